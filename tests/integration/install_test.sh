# Installs the build into a temporary prefix, builds the out-of-tree example against
# it with CMake (find_package) and with pkg-config, and runs both with the installed
# ipcrun.
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=${1:?build dir}
SRC=${2:?source dir}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ipc-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL (install): $*" >&2; exit 1; }

cmake --install "$BUILD" --prefix "$TMP/prefix" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; fail "cmake --install"; }
for f in bin/ipcrun include/ipc/ipc.hpp include/ipc/config.hpp lib/libipc.a lib/cmake/ipc/ipcConfig.cmake lib/pkgconfig/ipc.pc; do
  [[ -e $TMP/prefix/$f ]] || fail "$f was not installed"
done

# CMake package
cmake -S "$SRC/examples/out-of-tree" -B "$TMP/cm" -DCMAKE_PREFIX_PATH="$TMP/prefix" >"$TMP/cm.log" 2>&1 || { cat "$TMP/cm.log"; fail "configure with find_package(ipc)"; }
cmake --build "$TMP/cm" >"$TMP/cmb.log" 2>&1 || { cat "$TMP/cmb.log"; fail "build with find_package(ipc)"; }
out=$("$TMP/prefix/bin/ipcrun" -n 3 "$TMP/cm/sweep") || fail "the CMake-built example failed"
[[ $out == "best x = "*"over 3 ranks" ]] || fail "unexpected output: $out"

# pkg-config
export PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
c++ -O1 -o "$TMP/sweep-pc" "$SRC/examples/out-of-tree/sweep.cpp" $(pkg-config --cflags --libs ipc) ||
  fail "build with pkg-config"
out=$("$TMP/prefix/bin/ipcrun" -n 2 "$TMP/sweep-pc") || fail "the pkg-config-built example failed"
[[ $out == "best x = "*"over 2 ranks" ]] || fail "unexpected output: $out"
# The TLS module: installed, and what the installed programs load for a job over TLS
# (their run path names the installation's lib/ipc/); the programs link no OpenSSL.
[[ -e $TMP/prefix/lib/ipc/libipc-tls.so ]] || fail "lib/ipc/libipc-tls.so was not installed"
for prog in "$TMP/cm/sweep" "$TMP/sweep-pc"; do
  if ldd "$prog" | grep -Eq "libssl|libcrypto"; then fail "$prog links OpenSSL"; fi
  out=$("$TMP/prefix/bin/ipcrun" -n 2 --tls --transports tcp "$prog") || fail "$prog over TLS failed"
  [[ $out == "best x = "*"over 2 ranks" ]] || fail "unexpected output over TLS: $out"
done
# The engines module (built with PMIx): installed, and what the installed programs
# load under mpirun.
if grep -q "^IPC_HAVE_PMIX:INTERNAL=ON" "$BUILD/CMakeCache.txt" 2>/dev/null || [[ -e $BUILD/lib/libipc-engines.so ]]; then
  mod="$TMP/prefix/lib/ipc/libipc-engines.so"
  [[ -e $mod ]] || fail "lib/ipc/libipc-engines.so was not installed"
  if command -v mpirun >/dev/null; then
    # Found by the programs themselves (their run path names the installation's
    # lib/ipc/, not the build's), and named.
    for prog in "$TMP/cm/sweep" "$TMP/sweep-pc"; do
      grep -q "$BUILD/lib" < <(readelf -d "$prog" 2>/dev/null) && fail "$prog's run path names the build tree"
      for named in "" "$mod"; do
        out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_tcp_if_include=lo \
          OMPI_MCA_oob_tcp_if_include=lo timeout 120 mpirun --oversubscribe -n 2 -x IPC_ENGINES="$named" "$prog" 2>&1) ||
          fail "$prog under mpirun (IPC_ENGINES='$named') failed: $out"
        [[ $out == "best x = "*"over 2 ranks" ]] || fail "unexpected output under mpirun: $out"
      done
    done
  fi
fi
echo PASS
