# Thin wrapper around CMake: the README's two commands, `make demo` and `make test`.
BUILD ?= build
# `make fuzz`: a clang build of the libFuzzer targets, each run FUZZ_SECONDS.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 15
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")

.PHONY: all deps test-deps configure build demo test fuzz tsan asan install bench bench-quick clean

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

# What only the tests use (valgrind: job.dropped.memcheck; strace: job.shm.reads),
# before the build's configuration looks for it.
test-deps:
	@bash cluster/install-deps.sh valgrind strace

test: test-deps build
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

# Sanitizer runs (not part of CI: each is a build of its own, and runs several times
# slower). `make tsan`: ThreadSanitizer over the unit tests and the jobs whose ranks
# run more than one thread (progress thread, RPC servers, the farm, hang dumps, TLS).
# `make asan`: AddressSanitizer and UndefinedBehaviorSanitizer over the whole suite but
# the virtual cluster. Both fail on any report; timeouts are scaled (tests/CMakeLists.txt).
TSAN_BUILD ?= build-tsan
ASAN_BUILD ?= build-asan
TSAN_TESTS ?= ^unit[.]|^job[.](background|rpc|rpc_api|rpc_lost|coll_lost|coll_more|comms|farm|hang|tls|lost_peer|error_text|idle|window|sync|channel|dropped|sent_at_once)([.]|$$)
tsan: deps
	@test -f $(TSAN_BUILD)/CMakeCache.txt || cmake -S . -B $(TSAN_BUILD) -G "$(GENERATOR)" \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DIPC_SANITIZE=thread -DIPC_BUILD_BENCH=OFF
	@cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$(CURDIR)/tests/tsan.supp $(TSAN_OPTIONS)" \
	  ctest --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)'

asan: deps
	@test -f $(ASAN_BUILD)/CMakeCache.txt || cmake -S . -B $(ASAN_BUILD) -G "$(GENERATOR)" \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DIPC_SANITIZE=address -DIPC_BUILD_BENCH=OFF
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS="detect_leaks=1 $(ASAN_OPTIONS)" \
	  UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 $(UBSAN_OPTIONS)" \
	  ctest --output-on-failure -j $(JOBS) -E '^(multihost|cluster)[.]'

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
	rm -rf $(BUILD) $(FUZZ_BUILD) $(TSAN_BUILD) $(ASAN_BUILD)
