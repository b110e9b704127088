// The parameter tables (base/params.hpp): every default is a value of its own kind,
// names are unique, and a malformed value is a UsageError naming the variable, from
// its reader and from check_params (what ipcrun runs before it starts a rank).
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <set>
#include <string>

#include "base/errors.hpp"
#include "base/params.hpp"

namespace {

using ipc::base::Kind;
using ipc::base::Param;

// Sets an environment variable for one scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

const Param& declared(const std::string& name) {
  static const auto all = ipc::base::all_params();
  for (const auto& p : all)
    if (name == p.name) return p;
  throw std::runtime_error(name + " is not declared");
}

std::string thrown_by(auto&& f) {
  try {
    f();
  } catch (const ipc::UsageError& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

TEST(Params, EveryDefaultIsAValueOfItsKindAndEveryNameIsDeclaredOnce) {
  std::set<std::string> names;
  for (const Param& p : ipc::base::all_params()) {
    EXPECT_TRUE(names.insert(p.name).second) << p.name << " declared twice";
    EXPECT_EQ(ipc::base::param_problem(p, p.fallback), "") << p.name;
    EXPECT_EQ(p.kind == Kind::choice, *p.choices != '\0') << p.name << ": choices belong to (and only to) a choice";
  }
  EXPECT_GT(names.size(), 40u);
}

TEST(Params, EachKindTakesItsValuesAndNamesTheVariableInItsError) {
  const Param& count = declared("IPC_SHM_EAGER_ROOM");
  EXPECT_EQ(ipc::base::param_problem(count, "0"), "");
  EXPECT_EQ(ipc::base::param_problem(count, "0x2000"), "");
  EXPECT_EQ(ipc::base::param_problem(count, "-1"), "IPC_SHM_EAGER_ROOM='-1' is not an integer, 0 or more");
  EXPECT_NE(ipc::base::param_problem(count, "1.5"), "");
  EXPECT_NE(ipc::base::param_problem(count, "64K"), "");
  EXPECT_NE(ipc::base::param_problem(count, ""), "");
  EXPECT_NE(ipc::base::param_problem(count, "auto"), "") << "auto only where it is the default";

  const Param& automatic = declared("IPC_SHM_RING");
  EXPECT_EQ(ipc::base::param_problem(automatic, "auto"), "");
  EXPECT_EQ(ipc::base::param_problem(automatic, "65536"), "");
  EXPECT_EQ(ipc::base::param_problem(automatic, "big"), "IPC_SHM_RING='big' is not auto or an integer, 0 or more");

  const Param& boolean = declared("IPC_PROGRESS_THREAD");
  for (const char* v : {"1", "0", "yes", "Off", "TRUE", ""}) EXPECT_EQ(ipc::base::param_problem(boolean, v), "") << v;
  EXPECT_EQ(ipc::base::param_problem(boolean, "2"), "IPC_PROGRESS_THREAD='2' is not a boolean (1 or 0)");

  const Param& seconds = declared("IPC_BOOTSTRAP_TIMEOUT");
  EXPECT_EQ(ipc::base::param_problem(seconds, "0.25"), "");
  EXPECT_EQ(ipc::base::param_problem(seconds, "-3"), "IPC_BOOTSTRAP_TIMEOUT='-3' is not a number of seconds, 0 or more");

  const Param& choice = declared("IPC_COLL_ALLTOALL");
  EXPECT_EQ(ipc::base::param_problem(choice, "bruck"), "");
  EXPECT_EQ(ipc::base::param_problem(choice, "auto"), "");
  EXPECT_EQ(ipc::base::param_problem(choice, "bru"), "IPC_COLL_ALLTOALL='bru' is not one of auto, pairwise, bruck, all");

  EXPECT_EQ(ipc::base::param_problem(declared("IPC_TCP_ADDR"), "anything at all"), "");
}

TEST(Params, ReadersRefuseWhatTheCheckRefuses) {
  {
    ScopedEnv e("IPC_SHM_CHUNK", "-4096");
    EXPECT_EQ(thrown_by([] { ipc::base::param_int("IPC_SHM_CHUNK"); }),
              "IPC_SHM_CHUNK='-4096' is not an integer, 0 or more");
  }
  {
    ScopedEnv e("IPC_COLL_BCAST", "carrier_pigeon");
    EXPECT_EQ(thrown_by([] { ipc::base::param_checked("IPC_COLL_BCAST"); }),
              "IPC_COLL_BCAST='carrier_pigeon' is not one of auto, binomial, scatter_allgather");
  }
  {
    ScopedEnv e("IPC_SHM_CMA", "auto");  // passes the check; not a boolean to its reader
    EXPECT_EQ(ipc::base::param_checked("IPC_SHM_CMA"), "auto");
    EXPECT_EQ(thrown_by([] { ipc::base::param_bool("IPC_SHM_CMA"); }), "IPC_SHM_CMA='auto' is not a boolean (1 or 0)");
  }
  ScopedEnv e("IPC_DUMP_WAIT", "0.5");
  EXPECT_DOUBLE_EQ(ipc::base::param_seconds("IPC_DUMP_WAIT"), 0.5);
}

TEST(Params, CheckListsEveryMalformedValueAndTheLastOverrideWins) {
  ScopedEnv a("IPC_TLS", "perhaps");
  ScopedEnv b("IPC_WAIT_YIELD_US", "soon");
  EXPECT_EQ(thrown_by([] { ipc::base::check_params(); }),
            "IPC_WAIT_YIELD_US='soon' is not an integer, 0 or more\nIPC_TLS='perhaps' is not a boolean (1 or 0)");
  EXPECT_EQ(thrown_by([] { ipc::base::check_params({"IPC_TLS=1", "IPC_WAIT_YIELD_US=-1", "IPC_WAIT_YIELD_US=10"}); }),
            "(nothing thrown)");
  EXPECT_EQ(thrown_by([] { ipc::base::check_params({"IPC_TLS=1", "IPC_WAIT_YIELD_US=10", "IPC_WAIT_YIELD_US="}); }),
            "IPC_WAIT_YIELD_US='' is not an integer, 0 or more");
  EXPECT_EQ(thrown_by([] { ipc::base::check_params({"IPC_TLS=1", "IPC_WAIT_YIELD_US=5", "IPC_TLSX=what"}); }),
            "(nothing thrown)")
      << "only declared names are checked";
}

}  // namespace
