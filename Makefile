# Thin wrapper around CMake: the README's two commands, `make demo` and `make test`.
BUILD ?= build
# `make fuzz`: a clang build of the libFuzzer targets, each run FUZZ_SECONDS.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 15
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")

.PHONY: all deps configure build demo test fuzz install bench bench-quick clean

all: build

deps:
	@bash cluster/install-deps.sh

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# A grid-style workload: Monte Carlo pi farmed out to 4 ranks.
demo: build
	$(BUILD)/launcher/ipcrun -n 4 $(BUILD)/examples/pi

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

# The fuzz targets under libFuzzer (ASan and UBSan), over copies of tests/fuzz/corpus/:
# fails on a crash and prints the reproducer. Without this, ctest runs the same
# targets through a deterministic driver (fuzz.* tests).
fuzz:
	@bash cluster/install-deps.sh clang libclang-rt-dev
	@test -f $(FUZZ_BUILD)/CMakeCache.txt || CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G "$(GENERATOR)" \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DIPC_FUZZ=ON -DIPC_BUILD_BENCH=OFF
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	bash tests/fuzz/run_libfuzzer.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# This runtime against Open MPI, side by side: bench/results/<date>/.
bench: build
	@bash cluster/install-deps.sh gnuplot-nox
	python3 bench/compare --build $(BUILD)

bench-quick: build
	@bash cluster/install-deps.sh gnuplot-nox
	python3 bench/compare --quick --build $(BUILD)

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX),)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
