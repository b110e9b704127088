// The engines module: PMIx and MPI behind the tables of engines/abi.hpp. Built as
// libipc-engines.so, linked with PMIx (and Open MPI when the mpi transport is built),
// loaded by the runtime only under an engine. Nothing here throws or keeps state of
// its own beyond PMIx's session: the runtime above decides what a status means.
#include <pmix.h>
#if IPC_ENGINES_MPI
#include <mpi.h>
#endif

#include <algorithm>
#include <cstring>
#include <vector>

#include "engines/abi.hpp"

namespace {

using ipc::engines::Handle;

// ---- PMIx ----------------------------------------------------------------------

pmix_proc_t g_me{}, g_all{};

int pmix_init(char* nspace, std::size_t room, std::uint32_t* rank) {
  pmix_status_t rc = PMIx_Init(&g_me, nullptr, 0);
  if (rc != PMIX_SUCCESS) return rc;
  PMIX_LOAD_PROCID(&g_all, g_me.nspace, PMIX_RANK_WILDCARD);
  if (room > 0) {
    std::size_t n = std::min(room - 1, std::strlen(g_me.nspace));
    std::memcpy(nspace, g_me.nspace, n);
    nspace[n] = '\0';
  }
  *rank = g_me.rank;
  return PMIX_SUCCESS;
}

int pmix_finalize() { return PMIx_Finalize(nullptr, 0); }

int pmix_number(int which, std::uint64_t* value, int* type) {
  const char* key = which == 0 ? PMIX_JOB_SIZE : which == 1 ? PMIX_LOCAL_RANK : PMIX_LOCAL_SIZE;
  const pmix_proc_t& who = which == 1 ? g_me : g_all;
  pmix_value_t* v = nullptr;
  pmix_status_t rc = PMIx_Get(&who, key, nullptr, 0, &v);
  if (rc != PMIX_SUCCESS) return rc;
  *type = -1;
  switch (v->type) {
    case PMIX_UINT32: *value = v->data.uint32; break;
    case PMIX_UINT16: *value = v->data.uint16; break;
    case PMIX_UINT64: *value = v->data.uint64; break;
    case PMIX_INT: *value = static_cast<std::uint64_t>(v->data.integer); break;
    case PMIX_PROC_RANK: *value = v->data.rank; break;
    default: *type = v->type; break;
  }
  PMIX_VALUE_RELEASE(v);
  return PMIX_SUCCESS;
}

int pmix_hostname(char* name, std::size_t room) {
  pmix_value_t* v = nullptr;
  pmix_status_t rc = PMIx_Get(&g_me, PMIX_HOSTNAME, nullptr, 0, &v);
  if (rc != PMIX_SUCCESS) return rc;
  const char* s = v->type == PMIX_STRING && v->data.string ? v->data.string : "";
  if (room > 0) {
    std::size_t n = std::min(room - 1, std::strlen(s));
    std::memcpy(name, s, n);
    name[n] = '\0';
  }
  PMIX_VALUE_RELEASE(v);
  return PMIX_SUCCESS;
}

int pmix_put_bytes(const char* key, const void* data, std::size_t size, int* step) {
  pmix_value_t v;
  PMIX_VALUE_CONSTRUCT(&v);
  v.type = PMIX_BYTE_OBJECT;
  v.data.bo.bytes = static_cast<char*>(const_cast<void*>(data));
  v.data.bo.size = size;
  *step = 0;
  pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, key, &v);
  if (rc != PMIX_SUCCESS) return rc;
  *step = 1;
  return PMIx_Commit();
}

int pmix_get_bytes(std::uint32_t rank, const char* key, void (*take)(void*, const char*, std::size_t), void* context) {
  pmix_proc_t who;
  PMIX_LOAD_PROCID(&who, g_me.nspace, rank);
  pmix_value_t* v = nullptr;
  pmix_status_t rc = PMIx_Get(&who, key, nullptr, 0, &v);
  if (rc != PMIX_SUCCESS) return rc;
  if (v->type == PMIX_BYTE_OBJECT) take(context, v->data.bo.bytes, v->data.bo.size);
  PMIX_VALUE_RELEASE(v);
  return PMIX_SUCCESS;
}

int pmix_fence(int seconds) {
  pmix_info_t info[2];
  PMIX_INFO_CONSTRUCT(&info[0]);
  PMIX_INFO_CONSTRUCT(&info[1]);
  bool collect = true;
  PMIX_INFO_LOAD(&info[0], PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
  std::size_t n = 1;
  if (seconds > 0) {
    PMIX_INFO_LOAD(&info[1], PMIX_TIMEOUT, &seconds, PMIX_INT);
    n = 2;
  }
  pmix_status_t rc = PMIx_Fence(&g_all, 1, info, n);
  PMIX_INFO_DESTRUCT(&info[0]);
  PMIX_INFO_DESTRUCT(&info[1]);
  return rc;
}

const char* pmix_error_string(int status) { return PMIx_Error_string(status); }

const ipc::engines::PmixCalls kPmix{
    PMIX_SUCCESS, PMIX_ERR_TIMEOUT, pmix_init,      pmix_finalize,  pmix_number,      pmix_hostname,
    pmix_put_bytes, pmix_get_bytes, pmix_fence, pmix_error_string,
};

// ---- MPI -----------------------------------------------------------------------
#if IPC_ENGINES_MPI

// An MPI handle in an integer and back (the same bytes; Handle is at least as wide).
template <class H>
H from(Handle v) {
  static_assert(sizeof(H) <= sizeof(Handle));
  H h;
  std::memcpy(&h, &v, sizeof h);
  return h;
}
template <class H>
Handle to(H h) {
  Handle v = 0;
  std::memcpy(&v, &h, sizeof h);
  return v;
}

int mpi_init_thread(int required, int* provided) { return MPI_Init_thread(nullptr, nullptr, required, provided); }

int mpi_dup_world(Handle* comm) {
  MPI_Comm c = MPI_COMM_NULL;
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &c);
  if (rc == MPI_SUCCESS) MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  *comm = to(c);
  return rc;
}

int mpi_comm_free(Handle* comm) {
  auto c = from<MPI_Comm>(*comm);
  int rc = MPI_Comm_free(&c);
  *comm = to(c);
  return rc;
}

int mpi_comm_size(Handle comm, int* size) { return MPI_Comm_size(from<MPI_Comm>(comm), size); }
int mpi_comm_rank(Handle comm, int* rank) { return MPI_Comm_rank(from<MPI_Comm>(comm), rank); }

int mpi_isend(const void* data, int bytes, int dest, int tag, Handle comm, Handle* request) {
  MPI_Request r = MPI_REQUEST_NULL;
  int rc = MPI_Isend(data, bytes, MPI_BYTE, dest, tag, from<MPI_Comm>(comm), &r);
  *request = to(r);
  return rc;
}

int mpi_irecv(void* data, int bytes, int source, int tag, Handle comm, Handle* request) {
  MPI_Request r = MPI_REQUEST_NULL;
  int rc = MPI_Irecv(data, bytes, MPI_BYTE, source, tag, from<MPI_Comm>(comm), &r);
  *request = to(r);
  return rc;
}

int mpi_test(Handle* request, int* flag, int* source, int* bytes) {
  auto r = from<MPI_Request>(*request);
  MPI_Status st;
  st.MPI_SOURCE = -1;
  *flag = 0;
  int rc = MPI_Test(&r, flag, &st);
  *request = to(r);
  *source = st.MPI_SOURCE;
  *bytes = 0;
  if (rc == MPI_SUCCESS && *flag) MPI_Get_count(&st, MPI_BYTE, bytes);
  return rc;
}

int mpi_testall(int count, Handle* requests, int* flag) {
  if constexpr (sizeof(MPI_Request) == sizeof(Handle) && alignof(MPI_Request) <= alignof(Handle)) {
    // The same bytes (Open MPI: a pointer): tested in place, nothing allocated.
    return MPI_Testall(count, reinterpret_cast<MPI_Request*>(requests), flag, MPI_STATUSES_IGNORE);
  } else {
    std::vector<MPI_Request> r(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) r[static_cast<std::size_t>(i)] = from<MPI_Request>(requests[i]);
    int rc = MPI_Testall(count, r.data(), flag, MPI_STATUSES_IGNORE);
    for (int i = 0; i < count; ++i) requests[i] = to(r[static_cast<std::size_t>(i)]);
    return rc;
  }
}

void mpi_cancel(Handle* request, int wait) {
  auto r = from<MPI_Request>(*request);
  MPI_Cancel(&r);
  if (wait)
    MPI_Wait(&r, MPI_STATUS_IGNORE);
  else
    MPI_Request_free(&r);
  *request = to(r);
}

int mpi_error_string(int code, char* text, int room) {
  char buffer[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(code, buffer, &n) != MPI_SUCCESS) n = 0;
  n = std::clamp(n, 0, room);
  std::memcpy(text, buffer, static_cast<std::size_t>(n));
  return n;
}

const ipc::engines::MpiCalls kMpi{
    MPI_SUCCESS,   MPI_THREAD_SERIALIZED, MPI_ANY_SOURCE, to(MPI_REQUEST_NULL), to(MPI_COMM_NULL),
    MPI_Initialized, mpi_init_thread,     MPI_Finalize,   mpi_dup_world,        mpi_comm_free,
    mpi_comm_size, mpi_comm_rank,         mpi_isend,      mpi_irecv,            mpi_test,
    mpi_testall,   mpi_cancel,            mpi_error_string,
};
#endif

const ipc::engines::Module kModule{
    ipc::engines::kAbi,
    &kPmix,
#if IPC_ENGINES_MPI
    &kMpi,
#else
    nullptr,
#endif
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const ipc::engines::Module* ipc_engines_module() { return &kModule; }
