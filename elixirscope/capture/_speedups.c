/* elixirscope.capture._speedups: the capture hot path in C.
 *
 * Same contract and same records as the pure-Python modules (ring.py, hlc.py,
 * _pyhooks.py); tests run against both. What makes it cheap:
 *
 * - call(FID) records the entry, pushes a Node and returns FID's one shared Exit
 *   object. Exit's type maps both __enter__ and __exit__ to a descriptor that
 *   returns the Exit itself, so `with` allocates no bound methods; calling it
 *   with 0 arguments is the (empty) enter, with 3 it is the exit.
 * - The ring keeps records encoded, outside the Python heap (a malloc'd arena:
 *   see RingBuffer): a call or return without values as a compact C record,
 *   one with values written straight into the arena as msgpack (no tuple is
 *   made); drain_raw() (shipper thread) hands over the msgpack list as is.
 * - The call stack lives in a contextvar holding a mutable Cell. A Cell is
 *   changed in place only while exactly one context can see it: it remembers
 *   the context's variable mapping (HAMT) it was made under, and in-place use
 *   needs that mapping to be current and unshared (refcounts: the context + the
 *   cell) and the cell held by one mapping node only. Otherwise (a copied
 *   context: asyncio task, copy_context(), a set of another variable) the
 *   cell is forked with PyContextVar_Set first - so copies keep the snapshot
 *   semantics of contextvars without a contextvar set per call.
 *   Known limit: with a deep HAMT (many context variables) a copy that sets
 *   another variable before its first traced call can share a subtree node
 *   holding the cell; that copy may then see the creator's later stack.
 *   The current cell is found through a per-hooks cache validated by the
 *   thread state's context version (no contextvar lookup per hook), and the
 *   cell carries the correlation id of its mapping (see CellCache).
 * - A recorded root call in a context without a correlation id starts a chain:
 *   a fresh id (a random 64-bit prefix per process and a counter, 32 hex chars)
 *   kept as its number on its Node and inherited by nested Nodes, used by any
 *   event whose context has no id; it goes with the root's Node (a generator
 *   keeps it while suspended). The ring stores the number; drain() makes the
 *   text, so a root call allocates nothing for it.
 * - Timestamps come from the TSC mapped to wall time where that is safe (see
 *   HLC): one cheap read per event instead of clock_gettime.
 * - At level args, common values (int, float, bool, None, str, bytes, lists,
 *   tuples and dicts of them, and the objects values._object_kinds names: a
 *   mapped instance, an ASGI connection, an object of the program's own classes)
 *   are rendered in C exactly as values.safe_repr would, with redaction decided
 *   once per names tuple (whose msgpack is kept on the function), a dict key's,
 *   a field's or a pair's first item's verdict read from values' caches.
 *   A value a redaction processor could change (a string its pre-check flags,
 *   a name or pair not judged yet, an int of 13+ digits, bytes) is left to
 *   Python, so no value bypasses elixirscope/capture/redaction.py (see
 *   set_redaction).
 * - A web request without trace headers is begun, counted, given its trace
 *   headers and ended in C (HttpRequest, for integrations/asgi.py); a sqlite3
 *   statement's recording too (sqlite_execute, for integrations/sqlite.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <pthread.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000
#define CELL_INPLACE 1
typedef struct {
    PyObject_HEAD
    void *ctx_prev;
    PyObject *ctx_vars;
    PyObject *ctx_weakreflist;
    int ctx_entered;
} ContextLayout;
#else
#define CELL_INPLACE 0
#endif

/* ------------------------------------------------------------------ shared */

static PyObject *s_call, *s_return, *s_exception, *s_yield, *s_resume, *s_attr, *s_None_text;
static PyObject *s_record, *no_state; /* ObjectStates.record; (None, -1, None, None) */
static PyObject *s_zero;
static PyObject *s_drop_oldest, *s_drop_newest, *s_block;

static inline int64_t wall_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ chain ids
 *
 * Chain n (n >= 1) is the correlation id mix64(n ^ prefix) + prefix as 32
 * lowercase hex chars (the shape of uuid4().hex). The prefix is random per process: drawn at the
 * first Hooks.bind and again at a bind in a forked child (a fork re-binds), so
 * no two processes share ids. */

static uint64_t chain_count;
static char chain_prefix[16];
static uint64_t chain_prefix_bits;

/* splitmix64's finalizer: a bijection, so distinct chain numbers give distinct
 * leading halves, and ids of one process differ in their first characters
 * (people shorten ids to a prefix when they type them). */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static pid_t chain_pid; /* the process the prefix was drawn in (0: none yet) */
static uint64_t trace_rng; /* the state of the request ids' generator (HttpRequest), drawn with it */
static char hex_pairs[512]; /* byte b as two hex chars at 2*b */

static inline void hex64(char *out, uint64_t v) { /* 16 lowercase hex chars */
    for (int i = 14; i >= 0; i -= 2, v >>= 8) memcpy(out + i, hex_pairs + 2 * (v & 255), 2);
}

static PyObject *chain_text(uint64_t n) {
    PyObject *s = PyUnicode_New(32, 127);
    if (!s) return NULL;
    char *p = (char *)PyUnicode_1BYTE_DATA(s);
    hex64(p, mix64(n ^ chain_prefix_bits));
    memcpy(p + 16, chain_prefix, 16);
    return s;
}

/* A record's correlation id (Rec.cid) is NULL (None), an owned str, or chain n
 * tagged as (n << 1 | 1) - objects are aligned, so never odd. */
#if UINTPTR_MAX < UINT64_MAX
#error "chain numbers are tagged in 64-bit pointers (a 32-bit build uses pure Python)"
#endif
#define CHAIN_CID(n) ((PyObject *)(uintptr_t)((uint64_t)(n) << 1 | 1))
#define IS_CHAIN_CID(o) ((uintptr_t)(o) & 1)
#define CHAIN_OF(o) ((uint64_t)(uintptr_t)(o) >> 1)

#define OR_NONE(x) ((x) ? (x) : Py_None)

static inline void cid_release(PyObject *cid) {
    if (!IS_CHAIN_CID(cid)) Py_XDECREF(cid);
}

/* ------------------------------------------------------------------ HLC
 *
 * Reading the wall clock (clock_gettime, ~20-25 ns) twice per call was the
 * largest single cost of a traced call. Where the CPU has an invariant TSC that
 * the kernel itself uses as its clocksource (checked once at import;
 * ELIXIRSCOPE_NO_TSC=1 turns it off), the wall time is the last exact reading
 * (the anchor) plus the TSC ticks since, scaled by a rate measured against the
 * wall clock. The anchor is renewed with an exact reading every TSC_PERIOD ticks
 * (a few ms) and whenever the TSC goes backwards (another CPU), so the mapped
 * time never drifts more than the rate error over one period (well under a
 * microsecond); the HLC rule (+1 when not advancing) keeps stamps strictly
 * increasing across re-anchoring. Until the first rate is known (1 ms after the
 * first reading) every reading is exact. */

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
static inline uint64_t read_tsc(void) { return __rdtsc(); }
#else
#define HAVE_TSC 0
static inline uint64_t read_tsc(void) { return 0; }
#endif

#define TSC_PERIOD (1ULL << 23)        /* ticks between exact readings (~3 ms at 3 GHz) */
#define TSC_CALIBRATE_NS 1000000LL     /* first rate after this much wall time */
static int tsc_clock = 0;              /* set at import: the TSC mapping is used */

typedef struct {
    PyObject_HEAD
    int64_t last;
    uint64_t tsc_a;    /* anchor: ticks and wall ns of the last exact reading */
    int64_t wall_a;
    uint64_t mult;     /* ns per tick, 32.32 fixed point; 0 until calibrated */
    uint64_t tsc_c;    /* rate baseline: the first exact reading (0: none yet) */
    int64_t wall_c;
} HLC;

/* An exact wall-clock reading that also renews the anchor and the rate. */
static int64_t hlc_wall_exact(HLC *c) {
    if (!tsc_clock) return wall_ns();
    uint64_t t1 = read_tsc();
    int64_t wall = wall_ns();
    uint64_t t2 = read_tsc();
    if (t2 < t1 || t2 - t1 > 100000) return wall; /* interrupted: not a clean pair */
    uint64_t tsc = t1 + (t2 - t1) / 2;
    if (!c->tsc_c || tsc <= c->tsc_c || wall <= c->wall_c) {
        c->tsc_c = tsc;
        c->wall_c = wall;
    } else if (wall - c->wall_c >= TSC_CALIBRATE_NS) {
        double rate = (double)(wall - c->wall_c) / (double)(tsc - c->tsc_c); /* ns per tick */
        double cur = (double)c->mult / 4294967296.0;
        if (rate > 1e-3 && rate < 1e3 &&
            (!c->mult || (rate > cur * 0.9995 && rate < cur * 1.0005))) {
            c->mult = (uint64_t)(rate * 4294967296.0);
        } else { /* the wall clock was stepped: measure the rate afresh from here */
            c->tsc_c = tsc;
            c->wall_c = wall;
        }
    }
    c->tsc_a = tsc;
    c->wall_a = wall;
    return wall;
}

static inline int64_t hlc_wall(HLC *c) {
#if HAVE_TSC
    if (c->mult) {
        uint64_t d = read_tsc() - c->tsc_a;
        if (d < TSC_PERIOD) return c->wall_a + (int64_t)((d * c->mult) >> 32);
    }
#endif
    return hlc_wall_exact(c);
}

static inline int64_t hlc_now(HLC *c) {
    int64_t t = hlc_wall(c);
    if (t <= c->last) t = c->last + 1;
    c->last = t;
    return t;
}

/* At import: use the TSC only if it is invariant and the kernel trusts it. */
static void detect_tsc(void) {
#if HAVE_TSC
    const char *off = getenv("ELIXIRSCOPE_NO_TSC");
    if (off && *off && strcmp(off, "0") != 0) return;
    char buf[64] = {0};
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f) return;
    int ok = fgets(buf, sizeof buf, f) && strncmp(buf, "tsc", 3) == 0 &&
             (buf[3] == '\n' || buf[3] == 0);
    fclose(f);
    if (!ok) return;
    f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[4096];
    int constant = 0, nonstop = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        constant = strstr(line, " constant_tsc") != NULL;
        nonstop = strstr(line, " nonstop_tsc") != NULL;
        break;
    }
    fclose(f);
    tsc_clock = constant && nonstop;
#endif
}

static PyObject *HLC_now(HLC *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLongLong(hlc_now(self));
}

static PyObject *HLC_observe(HLC *self, PyObject *arg) {
    if (!PyLong_CheckExact(arg)) goto bad;
    long long remote = PyLong_AsLongLong(arg);
    if (remote == -1 && PyErr_Occurred()) { PyErr_Clear(); goto bad; }
    if (remote < 0) goto bad;
    int64_t t = hlc_wall(self);
    if (t <= self->last) t = self->last + 1;
    if (t <= remote) t = remote + 1;
    self->last = t;
    return PyLong_FromLongLong(t);
bad:
    PyErr_Format(PyExc_ValueError,
                 "Expected `remote_ts` an int >= 0 (ns since epoch), got %R - at HLC.observe", arg);
    return NULL;
}

static PyObject *HLC_get_last(HLC *self, void *Py_UNUSED(c)) {
    return PyLong_FromLongLong(self->last);
}

static PyMethodDef HLC_methods[] = {
    {"now", (PyCFunction)HLC_now, METH_NOARGS, "Strictly increasing ns since the epoch."},
    {"observe", (PyCFunction)HLC_observe, METH_O, "Merge a received timestamp."},
    {NULL}};
static PyGetSetDef HLC_getset[] = {{"last", (getter)HLC_get_last, NULL, NULL, NULL}, {NULL}};

static PyTypeObject HLCType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.HLC",
    .tp_basicsize = sizeof(HLC),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_methods = HLC_methods,
    .tp_getset = HLC_getset,
    .tp_doc = "Hybrid logical clock (C).",
};

/* ------------------------------------------------------------------ StepsIn */

/* StepsIn(awaitable, context): await `awaitable` with each of its steps run in
 * `context` - integrations.asgi._StepsIn in C (a recorded request's receive and
 * send, run in the context the request arrived in). It is its own iterator:
 * each send, throw, close and __next__ enters the context, steps the awaitable's
 * iterator, and leaves it; a step is synchronous, so the context is never
 * entered twice at once. */
typedef struct {
    PyObject_HEAD
    PyObject *it;  /* the awaitable's iterator (a coroutine is its own); NULL once done */
    PyObject *ctx;
    PyObject *counter; /* an HttpRequest counting the body its result carries, or NULL */
} StepsIn;

static void http_count_received(PyObject *req, PyObject *message); /* HttpRequest's */

/* The awaitable's iterator, as `await` gets it; NULL with the error. */
static PyObject *await_iter(PyObject *aw) {
    if (PyCoro_CheckExact(aw)) return Py_NewRef(aw);
    unaryfunc get = Py_TYPE(aw)->tp_as_async ? Py_TYPE(aw)->tp_as_async->am_await : NULL;
    if (!get) {
        PyErr_Format(PyExc_TypeError, "object %.100s can't be used in 'await' expression",
                     Py_TYPE(aw)->tp_name);
        return NULL;
    }
    PyObject *it = get(aw);
    if (it && !PyIter_Check(it)) {
        PyErr_Format(PyExc_TypeError, "__await__() returned non-iterator of type '%.100s'",
                     Py_TYPE(it)->tp_name);
        Py_CLEAR(it);
    }
    return it;
}

static PyTypeObject StepsInType;

/* StepsIn(aw, ctx) made in C; `counter` (may be NULL) counts its result's body. */
static PyObject *steps_in(PyObject *aw, PyObject *ctx, PyObject *counter) {
    PyObject *it = await_iter(aw);
    if (!it) return NULL;
    StepsIn *self = PyObject_GC_New(StepsIn, &StepsInType);
    if (!self) {
        Py_DECREF(it);
        return NULL;
    }
    self->it = it;
    self->ctx = Py_NewRef(ctx);
    self->counter = Py_XNewRef(counter);
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyObject *StepsIn_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
    PyObject *aw, *ctx;
    if (kw && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "StepsIn(awaitable, context) takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OO:StepsIn", &aw, &ctx)) return NULL;
    if (!PyContext_CheckExact(ctx)) {
        PyErr_Format(PyExc_TypeError, "Expected a contextvars.Context, got %R - at StepsIn",
                     ctx);
        return NULL;
    }
    PyObject *it = await_iter(aw);
    if (!it) return NULL;
    StepsIn *self = (StepsIn *)tp->tp_alloc(tp, 0);
    if (!self) {
        Py_DECREF(it);
        return NULL;
    }
    self->it = it;
    self->ctx = Py_NewRef(ctx);
    return (PyObject *)self;
}

static int StepsIn_traverse(StepsIn *self, visitproc visit, void *arg) {
    Py_VISIT(self->it);
    Py_VISIT(self->ctx);
    Py_VISIT(self->counter);
    return 0;
}

static int StepsIn_clear(StepsIn *self) {
    Py_CLEAR(self->it);
    Py_CLEAR(self->ctx);
    Py_CLEAR(self->counter);
    return 0;
}

static void StepsIn_dealloc(StepsIn *self) {
    PyObject_GC_UnTrack(self);
    StepsIn_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PySendResult StepsIn_am_send(StepsIn *self, PyObject *arg, PyObject **result) {
    *result = NULL;
    if (!self->it) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited StepsIn");
        return PYGEN_ERROR;
    }
    if (PyContext_Enter(self->ctx) < 0) return PYGEN_ERROR;
    PySendResult r = PyIter_Send(self->it, arg, result);
    if (PyContext_Exit(self->ctx) < 0) {
        Py_CLEAR(*result);
        r = PYGEN_ERROR;
    }
    if (r != PYGEN_NEXT) Py_CLEAR(self->it);
    if (r == PYGEN_RETURN && self->counter) http_count_received(self->counter, *result);
    return r;
}

/* send/__next__: the next value the awaitable yields, StopIteration(its result) at its end */
static PyObject *StepsIn_send(StepsIn *self, PyObject *arg) {
    PyObject *result;
    PySendResult r = StepsIn_am_send(self, arg, &result);
    if (r == PYGEN_RETURN) {
        if (result != Py_None) _PyGen_SetStopIterationValue(result);
        else PyErr_SetNone(PyExc_StopIteration);
        Py_DECREF(result);
        return NULL;
    }
    return result; /* NULL with the error for PYGEN_ERROR */
}

static PyObject *StepsIn_iternext(StepsIn *self) {
    PyObject *result;
    PySendResult r = StepsIn_am_send(self, Py_None, &result);
    if (r == PYGEN_RETURN) {
        if (result != Py_None) _PyGen_SetStopIterationValue(result);
        Py_DECREF(result);
        return NULL; /* no exception: StopIteration(None) */
    }
    return result;
}

/* throw / close: the awaitable's own, in the context (its exception, if any, goes on) */
static PyObject *steps_call(StepsIn *self, const char *name, PyObject *const *args,
                            Py_ssize_t n) {
    if (!self->it) {
        if (strcmp(name, "close") == 0) Py_RETURN_NONE;
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited StepsIn");
        return NULL;
    }
    PyObject *method = PyObject_GetAttrString(self->it, name);
    if (!method) {
        if (strcmp(name, "close") != 0 || !PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        Py_CLEAR(self->it);
        Py_RETURN_NONE; /* an iterator without close: nothing to close */
    }
    if (PyContext_Enter(self->ctx) < 0) {
        Py_DECREF(method);
        return NULL;
    }
    PyObject *out = PyObject_Vectorcall(method, args, n, NULL);
    Py_DECREF(method);
    if (PyContext_Exit(self->ctx) < 0) Py_CLEAR(out);
    if (!out || strcmp(name, "close") == 0) Py_CLEAR(self->it); /* it ended, or was closed */
    return out;
}

static PyObject *StepsIn_throw(StepsIn *self, PyObject *const *args, Py_ssize_t n) {
    return steps_call(self, "throw", args, n);
}

static PyObject *StepsIn_close(StepsIn *self, PyObject *Py_UNUSED(ignored)) {
    return steps_call(self, "close", NULL, 0);
}

static PyObject *StepsIn_await(StepsIn *self) { return Py_NewRef(self); }

static PyAsyncMethods StepsIn_async = {
    .am_await = (unaryfunc)StepsIn_await,
    .am_send = (sendfunc)StepsIn_am_send,
};

static PyMethodDef StepsIn_methods[] = {
    {"send", (PyCFunction)StepsIn_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))StepsIn_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)StepsIn_close, METH_NOARGS, NULL},
    {NULL}};

static PyTypeObject StepsInType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.StepsIn",
    .tp_basicsize = sizeof(StepsIn),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = StepsIn_new,
    .tp_traverse = (traverseproc)StepsIn_traverse,
    .tp_clear = (inquiry)StepsIn_clear,
    .tp_dealloc = (destructor)StepsIn_dealloc,
    .tp_as_async = &StepsIn_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)StepsIn_iternext,
    .tp_methods = StepsIn_methods,
    .tp_doc = "Await an awaitable with each of its steps run in a context.",
};

/* ------------------------------------------------------------------ Ids */

typedef struct {
    PyObject_HEAD
    int64_t value;
} Ids;

static PyObject *Ids_next(Ids *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLongLong(++self->value);
}
static PyMethodDef Ids_methods[] = {
    {"next", (PyCFunction)Ids_next, METH_NOARGS, "The next id (1, 2, 3, ...)."}, {NULL}};
static PyMemberDef Ids_members[] = {
    {"value", T_LONGLONG, offsetof(Ids, value), READONLY, "last id handed out"}, {NULL}};
static PyTypeObject IdsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.Ids",
    .tp_basicsize = sizeof(Ids),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_methods = Ids_methods,
    .tp_members = Ids_members,
};

/* ------------------------------------------------------------------ msgpack
 *
 * The ring keeps records encoded, as the msgpack of their contract tuples (see
 * RingBuffer). These write one msgpack item at p and return the end; the
 * caller has made room (MP_*_MAX bound each header). */

#define MP_INT_MAX 9 /* an int64 or uint64 */
#define MP_HDR_MAX 5 /* a str, bin, array or map header */

#define MP_INLINE static inline __attribute__((always_inline))

MP_INLINE char *mp_be(char *p, uint64_t v, int n) { /* n is 2, 4 or 8: big-endian */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (char)(v & 255);
    return p + n;
#endif
    if (n == 8) {
        uint64_t b = __builtin_bswap64(v);
        memcpy(p, &b, 8);
    } else if (n == 4) {
        uint32_t b = __builtin_bswap32((uint32_t)v);
        memcpy(p, &b, 4);
    } else {
        uint16_t b = __builtin_bswap16((uint16_t)v);
        memcpy(p, &b, 2);
    }
    return p + n;
}
MP_INLINE char *mp_nil(char *p) { *p++ = (char)0xc0; return p; }
MP_INLINE char *mp_uint(char *p, uint64_t v) {
    if (v < 128) { *p++ = (char)v; return p; }
    if (v < 256) { *p++ = (char)0xcc; *p++ = (char)v; return p; }
    if (v < 65536) { *p++ = (char)0xcd; return mp_be(p, v, 2); }
    if (v <= 0xffffffffULL) { *p++ = (char)0xce; return mp_be(p, v, 4); }
    *p++ = (char)0xcf;
    return mp_be(p, v, 8);
}
MP_INLINE char *mp_int(char *p, int64_t v) {
    if (v >= 0) return mp_uint(p, (uint64_t)v);
    if (v >= -32) { *p++ = (char)(uint8_t)(int8_t)v; return p; }
    if (v >= -128) { *p++ = (char)0xd0; *p++ = (char)(uint8_t)(int8_t)v; return p; }
    if (v >= -32768) { *p++ = (char)0xd1; return mp_be(p, (uint16_t)(int16_t)v, 2); }
    if (v >= INT32_MIN) { *p++ = (char)0xd2; return mp_be(p, (uint32_t)(int32_t)v, 4); }
    *p++ = (char)0xd3;
    return mp_be(p, (uint64_t)v, 8);
}
MP_INLINE char *mp_hdr(char *p, size_t n, uint8_t fix, size_t fix_max, uint8_t b8,
                           uint8_t b16, uint8_t b32) {
    if (n < fix_max) { *p++ = (char)(fix | n); return p; }
    if (b8 && n < 256) { *p++ = (char)b8; *p++ = (char)n; return p; }
    if (n < 65536) { *p++ = (char)b16; return mp_be(p, n, 2); }
    *p++ = (char)b32;
    return mp_be(p, n, 4);
}
#define mp_str_hdr(p, n) mp_hdr(p, n, 0xa0, 32, 0xd9, 0xda, 0xdb)
#define mp_array_hdr(p, n) mp_hdr(p, n, 0x90, 16, 0, 0xdc, 0xdd)
#define mp_map_hdr(p, n) mp_hdr(p, n, 0x80, 16, 0, 0xde, 0xdf)
MP_INLINE char *mp_bin_hdr(char *p, size_t n) {
    if (n < 256) { *p++ = (char)0xc4; *p++ = (char)n; return p; }
    if (n < 65536) { *p++ = (char)0xc5; return mp_be(p, n, 2); }
    *p++ = (char)0xc6;
    return mp_be(p, n, 4);
}
MP_INLINE char *mp_str(char *p, const char *s, size_t n) {
    p = mp_str_hdr(p, n);
    memcpy(p, s, n);
    return p + n;
}

/* A str's UTF-8 (cached on the str: a later call allocates nothing, so a write
 * pass after a sizing pass runs no Python). -1 with the error cleared when it has none. */
static inline int utf8_of(PyObject *s, const char **u, Py_ssize_t *n) {
    *u = PyUnicode_AsUTF8AndSize(s, n);
    if (*u) return 0;
    PyErr_Clear();
    return -1;
}

/* A str's encoded size, -1 (cleared) if it has no UTF-8; NULL counts as None. */
static inline Py_ssize_t text_size(PyObject *s) {
    const char *u;
    Py_ssize_t n;
    if (!s) return 1;
    return utf8_of(s, &u, &n) < 0 ? -1 : MP_HDR_MAX + n;
}
MP_INLINE char *mp_text(char *p, PyObject *s) { /* after text_size: cached UTF-8 */
    const char *u;
    Py_ssize_t n;
    if (!s) return mp_nil(p);
    utf8_of(s, &u, &n);
    return mp_str(p, u, n);
}

/* Chain n's correlation id (see chain_text) as a msgpack str; the last one is kept
 * (consecutive records mostly share a chain). */
#define CHAIN_MP 34
static uint64_t chain_mp_n; /* 0: none kept (chains count from 1) */
static char chain_mp[CHAIN_MP];
MP_INLINE char *mp_chain(char *p, uint64_t n) {
    if (n != chain_mp_n) {
        chain_mp[0] = (char)0xd9;
        chain_mp[1] = 32;
        hex64(chain_mp + 2, mix64(n ^ chain_prefix_bits));
        memcpy(chain_mp + 18, chain_prefix, 16);
        chain_mp_n = n;
    }
    memcpy(p, chain_mp, CHAIN_MP);
    return p + CHAIN_MP;
}

/* A record's correlation id (Rec.cid form: NULL, a str, or a chain): its encoded size. */
static inline Py_ssize_t cid_size(PyObject *cid) {
    if (!cid) return 1;
    if (IS_CHAIN_CID(cid)) return CHAIN_MP;
    const char *u;
    Py_ssize_t n;
    return utf8_of(cid, &u, &n) < 0 ? -1 : MP_HDR_MAX + n;
}
MP_INLINE char *mp_cid(char *p, PyObject *cid) {
    if (!cid) return mp_nil(p);
    if (IS_CHAIN_CID(cid)) return mp_chain(p, CHAIN_OF(cid));
    const char *u;
    Py_ssize_t n;
    utf8_of(cid, &u, &n); /* cached by cid_size */
    return mp_str(p, u, n);
}

/* --- any value: builtin types in C, the rest by msgspec (as the shipper did) ---
 *
 * enc_size(v) bounds the encoded size of v, or is -1 for a value C leaves to
 * msgspec (another type, an int over 64 bits, a str without UTF-8, deeper than
 * ENC_DEPTH); enc_write(v, p, end) writes it, NULL if it does not fit in end - p
 * (the value changed since it was sized). Neither runs Python code. */

#define ENC_DEPTH 32

static Py_ssize_t enc_size(PyObject *v, int depth) {
    PyTypeObject *t = Py_TYPE(v);
    if (v == Py_None || t == &PyBool_Type) return 1;
    if (t == &PyLong_Type) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
        if (overflow > 0) {
            unsigned long long u = PyLong_AsUnsignedLongLong(v);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
        } else if (overflow < 0) {
            return -1;
        }
        return MP_INT_MAX;
    }
    if (t == &PyFloat_Type) return 9;
    if (t == &PyUnicode_Type) {
        const char *u;
        Py_ssize_t n;
        return utf8_of(v, &u, &n) < 0 ? -1 : MP_HDR_MAX + n;
    }
    if (t == &PyBytes_Type) return MP_HDR_MAX + PyBytes_GET_SIZE(v);
    if (depth >= ENC_DEPTH) return -1;
    if (t == &PyTuple_Type || t == &PyList_Type) {
        Py_ssize_t size = MP_HDR_MAX, n = PySequence_Fast_GET_SIZE(v);
        PyObject **items = PySequence_Fast_ITEMS(v);
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t s = enc_size(items[i], depth + 1);
            if (s < 0) return -1;
            size += s;
        }
        return size;
    }
    if (t == &PyDict_Type) {
        Py_ssize_t size = MP_HDR_MAX, pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(v, &pos, &key, &value)) {
            if (!PyUnicode_CheckExact(key)) return -1;
            Py_ssize_t a = enc_size(key, depth + 1), b = enc_size(value, depth + 1);
            if (a < 0 || b < 0) return -1;
            size += a + b;
        }
        return size;
    }
    return -1;
}

static char *enc_write(PyObject *v, char *p, char *end, int depth) {
    PyTypeObject *t = Py_TYPE(v);
    if (end - p < (t == &PyLong_Type || t == &PyFloat_Type ? MP_INT_MAX : MP_HDR_MAX) &&
        (end - p < 1 || (v != Py_None && t != &PyBool_Type)))
        return NULL;
    if (v == Py_None) return mp_nil(p);
    if (t == &PyBool_Type) { *p++ = (char)(v == Py_True ? 0xc3 : 0xc2); return p; }
    if (t == &PyLong_Type) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow > 0) return mp_uint(p, PyLong_AsUnsignedLongLong(v));
        return overflow ? NULL : mp_int(p, x);
    }
    if (t == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(v);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        *p++ = (char)0xcb;
        return mp_be(p, bits, 8);
    }
    if (t == &PyUnicode_Type) {
        const char *u;
        Py_ssize_t n;
        if (utf8_of(v, &u, &n) < 0 || end - p < MP_HDR_MAX + n) return NULL;
        return mp_str(p, u, n);
    }
    if (t == &PyBytes_Type) {
        Py_ssize_t n = PyBytes_GET_SIZE(v);
        if (end - p < MP_HDR_MAX + n) return NULL;
        p = mp_bin_hdr(p, n);
        memcpy(p, PyBytes_AS_STRING(v), n);
        return p + n;
    }
    if (t == &PyTuple_Type || t == &PyList_Type) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
        p = mp_array_hdr(p, n);
        for (Py_ssize_t i = 0; i < n && p; i++) {
            if (i >= PySequence_Fast_GET_SIZE(v)) return NULL; /* a list that shrank */
            p = enc_write(PySequence_Fast_ITEMS(v)[i], p, end, depth + 1);
        }
        return p;
    }
    if (t == &PyDict_Type) {
        Py_ssize_t pos = 0, n = PyDict_GET_SIZE(v), k = 0;
        PyObject *key, *value;
        p = mp_map_hdr(p, n);
        while (p && PyDict_Next(v, &pos, &key, &value) && k++ < n) {
            p = enc_write(key, p, end, depth + 1);
            if (p) p = enc_write(value, p, end, depth + 1);
        }
        return k == n ? p : NULL;
    }
    return NULL;
}

/* msgspec.msgpack.encode / decode, imported at first use. */
static PyObject *mp_encode_fn, *mp_decode_fn;

static PyObject *msgspec_fn(PyObject **cache, const char *name) {
    if (!*cache) {
        PyObject *mod = PyImport_ImportModule("msgspec.msgpack");
        *cache = mod ? PyObject_GetAttrString(mod, name) : NULL;
        Py_XDECREF(mod);
    }
    return *cache;
}

/* ------------------------------------------------------------------ RingBuffer
 *
 * Records are kept encoded, so that what waits in the ring is no object of
 * the Python heap (tracemalloc sees none of it, a program measuring its own
 * memory sees recording cost nothing): the slots and an arena of encoded
 * bytes are malloc'd once, when the ring is made. A slot holds either a call
 * or return without values in compact form (its ids and three borrowed strs:
 * name, file, correlation id; the hot path at level boundaries) or a blob: the
 * msgpack of the record's contract tuple in the arena (in a bytes object of its
 * own when larger than a quarter of the arena). The arena is filled in order
 * and freed in order: a blob is contiguous (one that would cross the end
 * starts again at the beginning), so the bytes in use run from the oldest
 * blob's to the newest's. A full arena is a full ring: the policy applies.
 *
 * drain_raw(n) hands the shipper the oldest n records as one msgpack array
 * (compact records encoded then); drain(n) decodes them (arrays at the top as
 * tuples). append(v) encodes v (builtin types in C, the rest by msgspec); a
 * value msgspec cannot encode is refused, counted in `unencodable`. */

enum { K_EMPTY = 0, K_BLOB, K_CALL, K_RETURN };
enum { P_OLDEST = 0, P_NEWEST, P_BLOCK };

typedef struct {
    int kind;
    uint32_t vlen;  /* K_BLOB: the encoded record's bytes */
    uint64_t voff;  /* K_BLOB: where in the arena (absolute: modulo its size) */
    int64_t id, ts, parent, call_id, dur; /* K_CALL: call_id = the function's def line */
    unsigned long thread;
    PyObject *cid, *name, *file; /* owned; NULL = None; cid may be a chain (CHAIN_CID) */
    PyObject *big; /* K_BLOB too large for the arena: the bytes holding it */
} Rec;

#define ARENA_PER_SLOT 128        /* default arena bytes per slot */
#define ARENA_MIN 4096            /* the smallest arena (a size given is rounded up to a power of two) */
#define ARENA_DEFAULT_MIN (64 * 1024)

typedef struct {
    PyObject_HEAD
    Rec *slots;
    uint64_t cap, mask, head, tail;
    char *arena;
    uint64_t asize, ahead, atail; /* bytes in use: [ahead, atail), absolute */
    int arena_fixed;              /* asize was given: kept by resize */
    int policy;
    double timeout;
    int64_t writes, reads, dropped_oldest, dropped_newest, block_timeouts, block_waits;
    int64_t unencodable; /* records msgspec could not encode: refused */
    int64_t big;         /* records kept outside the arena */
    int64_t stalls;     /* times the ring gave up waiting and started dropping */
    int stalled;        /* 1: the pipeline stalled; a full ring drops (counted) until caught up */
    uint64_t stall_head; /* head when it stalled: half a ring drained since is caught up too */
    uint64_t wake_at;   /* size at which the waker is called (0: never) */
    PyObject *waker;    /* called (no args) when the consumer has work: wake_at reached or full */
    PyObject *on_stall; /* called (no args) when the ring starts dropping on a stall */
} Ring;

static inline void rec_clear(Rec *r) {
    if (IS_CHAIN_CID(r->cid)) r->cid = NULL;
    else Py_CLEAR(r->cid);
    Py_CLEAR(r->name);
    Py_CLEAR(r->file);
    Py_CLEAR(r->big);
    r->kind = K_EMPTY;
}

static inline int in_arena(Rec *r) { return r->kind == K_BLOB && !r->big; }

/* An empty ring starts again at its first slot and at its arena's start: the next
 * records are written where the last ones were, in memory the caches still hold,
 * instead of sweeping the slots and the arena (megabytes) through them. Positions
 * only grow (to the next multiple of the capacity, of the arena's size): a waiting
 * producer sees progress, and sizes stay tail - head. */
static inline void ring_restart(Ring *r) {
    r->tail = r->head = (r->tail + r->mask) & ~r->mask;
    r->atail = r->ahead = (r->atail + r->asize - 1) & ~(r->asize - 1);
}

/* Remove the oldest record (dropped or read): its arena bytes are free. */
static inline void ring_pop(Ring *r) {
    Rec *rec = &r->slots[r->head & r->mask];
    if (in_arena(rec)) r->ahead = rec->voff + rec->vlen;
    rec_clear(rec);
    r->head++;
    if (r->head == r->tail) ring_restart(r);
}

/* Where `need` arena bytes would start (contiguous: past the end, at the beginning). */
static inline uint64_t arena_start(Ring *r, uint64_t need) {
    uint64_t at = r->atail, phys = at & (r->asize - 1);
    return phys + need > r->asize ? at + (r->asize - phys) : at;
}

static inline int has_room(Ring *r, uint64_t need) {
    return r->tail - r->head < r->cap &&
           (!need || arena_start(r, need) + need - r->ahead <= r->asize);
}

static int check_capacity(PyObject *o, const char *where, uint64_t *out) {
    if (PyLong_CheckExact(o)) {
        long long v = PyLong_AsLongLong(o);
        if (!(v == -1 && PyErr_Occurred()) && v >= 1 && (v & (v - 1)) == 0 && v <= (1LL << 40)) {
            *out = (uint64_t)v;
            return 0;
        }
        PyErr_Clear();
    }
    PyErr_Format(PyExc_ValueError,
                 "Expected `capacity` a power of two >= 1 (e.g. 65536), got %R - at %s", o, where);
    return -1;
}

static int check_policy(PyObject *o, const char *where, int *out) {
    if (PyUnicode_Check(o)) {
        if (PyUnicode_Compare(o, s_drop_oldest) == 0) { *out = P_OLDEST; return 0; }
        if (PyUnicode_Compare(o, s_drop_newest) == 0) { *out = P_NEWEST; return 0; }
        if (PyUnicode_Compare(o, s_block) == 0) { *out = P_BLOCK; return 0; }
        if (PyErr_Occurred()) PyErr_Clear();
    }
    PyErr_Format(PyExc_ValueError,
                 "Expected `policy` one of 'drop_oldest', 'drop_newest', 'block', got %R - at %s",
                 o, where);
    return -1;
}

static int check_timeout(PyObject *o, const char *where, double *out) {
    if (PyFloat_CheckExact(o) || PyLong_CheckExact(o)) {
        double v = PyFloat_AsDouble(o);
        if (!(v == -1.0 && PyErr_Occurred()) && v >= 0 && v < 1e300) { *out = v; return 0; }
        PyErr_Clear();
    }
    PyErr_Format(PyExc_ValueError,
                 "Expected `block_timeout_s` a finite number >= 0, got %R - at %s", o, where);
    return -1;
}

static int check_arena(PyObject *o, const char *where, uint64_t *out) {
    if (o == Py_None) { *out = 0; return 0; }
    if (PyLong_CheckExact(o)) {
        long long v = PyLong_AsLongLong(o);
        if (!(v == -1 && PyErr_Occurred()) && v >= ARENA_MIN && v <= (1LL << 40)) {
            *out = (uint64_t)v;
            return 0;
        }
        PyErr_Clear();
    }
    PyErr_Format(PyExc_ValueError,
                 "Expected `arena_bytes` an int >= 4096 or None (by capacity), got %R - at %s",
                 o, where);
    return -1;
}

/* The arena's size: a power of two (positions are masked), at least `bytes`. */
static uint64_t arena_round(uint64_t bytes) {
    uint64_t a = ARENA_MIN;
    while (a < bytes) a <<= 1;
    return a;
}

static uint64_t arena_for(uint64_t cap) {
    uint64_t a = cap * ARENA_PER_SLOT;
    return arena_round(a < ARENA_DEFAULT_MIN ? ARENA_DEFAULT_MIN : a);
}

static int Ring_init(Ring *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"capacity", "policy", "block_timeout_s", "arena_bytes", NULL};
    PyObject *cap = NULL, *policy = NULL, *timeout = NULL, *arena = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOOO", kwlist, &cap, &policy, &timeout, &arena))
        return -1;
    uint64_t c = 65536, a = 0;
    int p = P_OLDEST;
    double t = 0.05;
    if (cap && check_capacity(cap, "RingBuffer(capacity)", &c) < 0) return -1;
    if (policy && check_policy(policy, "RingBuffer(policy)", &p) < 0) return -1;
    if (timeout && check_timeout(timeout, "RingBuffer(block_timeout_s)", &t) < 0) return -1;
    if (arena && check_arena(arena, "RingBuffer(arena_bytes)", &a) < 0) return -1;
    if (self->slots) {
        PyErr_SetString(PyExc_RuntimeError, "RingBuffer already initialised");
        return -1;
    }
    self->arena_fixed = a != 0;
    a = a ? arena_round(a) : arena_for(c);
    self->slots = calloc(c, sizeof(Rec)); /* malloc, not PyMem: the program's heap is untouched */
    self->arena = malloc(a);
    if (!self->slots || !self->arena) {
        free(self->slots);
        free(self->arena);
        self->slots = NULL;
        self->arena = NULL;
        PyErr_NoMemory();
        return -1;
    }
    self->cap = c;
    self->mask = c - 1;
    self->asize = a;
    self->policy = p;
    self->timeout = t;
    return 0;
}

static void Ring_dealloc(Ring *self) {
    if (self->slots) {
        for (uint64_t i = self->head; i < self->tail; i++) rec_clear(&self->slots[i & self->mask]);
        free(self->slots);
    }
    free(self->arena);
    Py_CLEAR(self->waker);
    Py_CLEAR(self->on_stall);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Call a ring callback with the GIL held and no slot reserved; its errors are not the host's. */
static void ring_callback(Ring *r, PyObject *fn) {
    if (!fn) return;
    Py_INCREF(r);
    Py_INCREF(fn);
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *res = PyObject_CallNoArgs(fn);
    if (res) Py_DECREF(res);
    else PyErr_Clear();
    PyErr_Restore(exc_type, exc_value, exc_tb);
    Py_DECREF(fn);
    Py_DECREF(r);
}

static void ring_stall(Ring *r) {
    if (r->stalled) return;
    r->stalled = 1;
    r->stall_head = r->head;
    r->stalls++;
    ring_callback(r, r->on_stall);
}

/* Take the tail slot, with `need` arena bytes (rec->voff) when need > 0. */
static inline Rec *ring_take(Ring *r, uint64_t need) {
    Rec *rec = &r->slots[r->tail++ & r->mask];
    if (need) {
        rec->voff = arena_start(r, need);
        r->atail = rec->voff + need;
    }
    return rec;
}

/* Drop the oldest records (counted) until `need` fits; 0 if it cannot. */
static int drop_oldest_for(Ring *r, uint64_t need) {
    while (!has_room(r, need) && r->tail != r->head) {
        ring_pop(r);
        r->dropped_oldest++;
    }
    return has_room(r, need);
}

/* A free slot for one record with `need` bytes of arena (none: 0), or NULL if the
 * policy refused it (counted). GIL held. Nothing between this and ring_commit may
 * run Python code (another record would take the next slot meanwhile). */
static Rec *ring_slot(Ring *r, uint64_t need) {
    if (r->waker && r->tail - r->head + 1 == r->wake_at) ring_callback(r, r->waker);
    r->writes++;
    if (has_room(r, need)) return ring_take(r, need);
    if (r->policy == P_OLDEST) {
        if (drop_oldest_for(r, need)) return ring_take(r, need);
        r->dropped_newest++; /* larger than the whole arena: cannot be */
        return NULL;
    }
    if (r->policy == P_BLOCK) {
        if (r->stalled) {  /* the pipeline is stuck: count the drop, never wait again */
            r->block_timeouts++;
            return NULL;
        }
        r->block_waits++;
        ring_callback(r, r->waker);
        /* Wait without the GIL until the consumer has drained half the ring (slots and
         * arena): one long drain, not a GIL hand-off per batch. The timeout counts from
         * the consumer's last progress: a slow consumer is waited for, a stuck one not.
         * Other producers may take the room first: then wait again. */
        double deadline = mono_s() + r->timeout;
        uint64_t low = r->cap / 2, alow = r->asize / 2, seen = r->head;
        int timed_out = 0;
        Py_INCREF(r);
        while (!has_room(r, need) && r->policy == P_BLOCK && !r->stalled && !timed_out) {
            Py_BEGIN_ALLOW_THREADS
            for (;;) {
                uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
                uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
                uint64_t ahead = __atomic_load_n(&r->ahead, __ATOMIC_ACQUIRE);
                uint64_t atail = __atomic_load_n(&r->atail, __ATOMIC_ACQUIRE);
                if ((tail - head <= low && atail - ahead <= alow) ||
                    __atomic_load_n(&r->policy, __ATOMIC_ACQUIRE) != P_BLOCK ||
                    __atomic_load_n(&r->stalled, __ATOMIC_ACQUIRE))
                    break;
                double now = mono_s();
                if (head != seen) {
                    seen = head;
                    deadline = now + r->timeout;
                }
                double left = deadline - now;
                if (left <= 0) {
                    timed_out = 1;
                    break;
                }
                struct timespec nap = {0, left > 50e-6 ? 50000 : (long)(left * 1e9)};
                nanosleep(&nap, NULL);
            }
            Py_END_ALLOW_THREADS
        }
        Py_DECREF(r);
        if (has_room(r, need)) return ring_take(r, need);
        if (r->policy == P_OLDEST && drop_oldest_for(r, need)) /* switched while waiting */
            return ring_take(r, need);
        r->block_timeouts++;
        if (r->policy == P_BLOCK) ring_stall(r);
        return NULL;
    }
    r->dropped_newest++;
    return NULL;
}

/* A slot for a blob of at most `need` bytes, and where to write it (*at): in the
 * arena, or in a bytes object of its own when larger than a quarter of it. */
static Rec *ring_reserve(Ring *r, Py_ssize_t need, char **at) {
    PyObject *big = NULL;
    if ((uint64_t)need > r->asize / 4) {
        big = PyBytes_FromStringAndSize(NULL, need);
        if (!big) { /* out of memory: not recorded, counted */
            PyErr_Clear();
            r->writes++;
            r->unencodable++;
            return NULL;
        }
    }
    Rec *rec = ring_slot(r, big ? 0 : (uint64_t)need);
    if (!rec) {
        Py_XDECREF(big);
        return NULL;
    }
    rec->kind = K_BLOB;
    rec->big = big;
    if (big) r->big++;
    *at = big ? PyBytes_AS_STRING(big) : r->arena + (rec->voff & (r->asize - 1));
    return rec;
}

/* The blob reserved with `need` bytes took `used`: the rest of the arena is free again. */
static inline void ring_commit(Ring *r, Rec *rec, Py_ssize_t need, Py_ssize_t used) {
    rec->vlen = (uint32_t)used;
    if (!rec->big && r->atail == rec->voff + (uint64_t)need) r->atail = rec->voff + used;
}

/* The blob just reserved could not be written (the value changed under it): not
 * recorded, counted in unencodable. */
static void ring_unreserve(Ring *r, Rec *rec, Py_ssize_t need) {
    if (!rec->big && r->atail == rec->voff + (uint64_t)need) r->atail = rec->voff;
    rec_clear(rec);
    if (&r->slots[(r->tail - 1) & r->mask] == rec) r->tail--;
    if (r->head == r->tail) r->ahead = r->atail;
    r->unencodable++;
}

/* Record any value (a contract tuple from Python): 1 kept, 0 refused (counted). */
static int ring_put(Ring *r, PyObject *obj) {
    PyObject *encoded = NULL;
    Py_ssize_t need = enc_size(obj, 0);
    if (need < 0) { /* not a value C encodes: msgspec's (it was the shipper's encoder) */
        PyObject *encode = msgspec_fn(&mp_encode_fn, "encode");
        encoded = encode ? PyObject_CallOneArg(encode, obj) : NULL;
        if (!encoded || !PyBytes_Check(encoded)) {
            PyErr_Clear();
            Py_XDECREF(encoded);
            r->writes++;
            r->unencodable++;
            return 0;
        }
        need = PyBytes_GET_SIZE(encoded);
    }
    char *at;
    Rec *rec = ring_reserve(r, need, &at);
    if (!rec) {
        Py_XDECREF(encoded);
        return 0;
    }
    if (encoded) {
        memcpy(at, PyBytes_AS_STRING(encoded), need);
        Py_DECREF(encoded);
        ring_commit(r, rec, need, need);
        return 1;
    }
    char *end = enc_write(obj, at, at + need, 0);
    if (!end) {
        ring_unreserve(r, rec, need);
        return 0;
    }
    ring_commit(r, rec, need, end - at);
    return 1;
}

/* ring_put of the tuple before + (middle,) + after, written without making it (a query
 * whose rows were known last: sq_finish). -1 when a part is not a value C encodes:
 * nothing written, the caller puts the tuple. */
static int ring_put_joined(Ring *r, PyObject *before, PyObject *middle, PyObject *after) {
    Py_ssize_t nb = PyTuple_GET_SIZE(before), na = PyTuple_GET_SIZE(after);
    Py_ssize_t need = MP_HDR_MAX + enc_size(middle, 1), size;
    for (Py_ssize_t i = 0; need >= MP_HDR_MAX && i < nb + na; i++) {
        size = enc_size(i < nb ? PyTuple_GET_ITEM(before, i) : PyTuple_GET_ITEM(after, i - nb), 1);
        need = size < 0 ? -1 : need + size;
    }
    if (need < MP_HDR_MAX) {
        PyErr_Clear();
        return -1;
    }
    char *at;
    Rec *rec = ring_reserve(r, need, &at);
    if (!rec) return 0;
    char *end = at + need, *p = mp_array_hdr(at, (uint32_t)(nb + 1 + na));
    for (Py_ssize_t i = 0; p && i < nb; i++) p = enc_write(PyTuple_GET_ITEM(before, i), p, end, 1);
    if (p) p = enc_write(middle, p, end, 1);
    for (Py_ssize_t i = 0; p && i < na; i++) p = enc_write(PyTuple_GET_ITEM(after, i), p, end, 1);
    if (!p) {
        ring_unreserve(r, rec, need); /* a value changed under it: counted */
        return 0;
    }
    ring_commit(r, rec, need, p - at);
    return 1;
}

static PyObject *Ring_append(Ring *self, PyObject *obj) {
    if (ring_put(self, obj)) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* --- reading: the oldest records as one msgpack array --- */

/* A compact record's encoded size (bounded), -1 if a str of it has no UTF-8. */
static Py_ssize_t compact_size(Rec *r) {
    const char *u;
    Py_ssize_t n, size = 1 + 8 + 4 * MP_INT_MAX + 3; /* header, tag, ints, nils */
    Py_ssize_t c = cid_size(r->cid);
    if (c < 0 || utf8_of(r->name, &u, &n) < 0) return -1;
    size += c + MP_HDR_MAX + n + 2 * MP_INT_MAX;
    if (r->file) {
        if (utf8_of(r->file, &u, &n) < 0) return -1;
        size += MP_HDR_MAX + n;
    }
    return size;
}

static char *compact_write(Rec *r, char *p) {
    const char *u;
    Py_ssize_t n;
    if (r->kind == K_CALL) { /* ("call", id, ts, thread, cid, parent, name, None, file, line, None) */
        p = mp_array_hdr(p, 11);
        p = mp_str(p, "call", 4);
    } else { /* ("return", id, ts, thread, cid, parent, call_id, name, dur, None) */
        p = mp_array_hdr(p, 10);
        p = mp_str(p, "return", 6);
    }
    p = mp_int(p, r->id);
    p = mp_int(p, r->ts);
    p = mp_uint(p, r->thread);
    p = mp_cid(p, r->cid);
    p = mp_int(p, r->parent);
    if (r->kind == K_RETURN) p = mp_int(p, r->call_id);
    utf8_of(r->name, &u, &n);
    p = mp_str(p, u, n);
    if (r->kind == K_RETURN) return mp_nil(mp_int(p, r->dur));
    p = mp_nil(p);
    if (r->file) {
        utf8_of(r->file, &u, &n);
        p = mp_str(p, u, n);
    } else {
        p = mp_nil(p);
    }
    return mp_nil(mp_int(p, r->call_id));
}

static long long drain_count(Ring *self, PyObject *const *args, Py_ssize_t nargs,
                             const char *where) {
    long long max_n = LLONG_MAX;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s(max_n) takes at most one argument", where);
        return -1;
    }
    if (nargs == 1) {
        max_n = PyLong_CheckExact(args[0]) ? PyLong_AsLongLong(args[0]) : -1;
        if (max_n < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "Expected `max_n` an int >= 0, got %R - at RingBuffer.%s",
                         args[0], where);
            return -1;
        }
    }
    uint64_t size = self->tail - self->head;
    return (uint64_t)max_n < size ? max_n : (long long)size;
}

/* The ring waits for the consumer again once it caught up (empty) or works again
 * (half a ring drained since the stall: a program recording faster than the
 * pipeline drains would never let it empty, and would drop for good). */
static void unstall_if_working(Ring *self) {
    if (self->stalled && (self->tail == self->head || self->head - self->stall_head >= self->cap / 2))
        self->stalled = 0;
}

/* The oldest n records, removed, as the msgpack of a list of n contract tuples. */
static PyObject *drain_bytes(Ring *self, uint64_t n) {
    /* sizing and writing run no Python code (utf8 is cached by the sizing pass):
     * no other record can be added or dropped meanwhile */
    Py_ssize_t total = MP_HDR_MAX;
    for (uint64_t i = 0; i < n; i++) {
        Rec *r = &self->slots[(self->head + i) & self->mask];
        Py_ssize_t s = r->kind == K_BLOB ? (Py_ssize_t)r->vlen : compact_size(r);
        if (s < 0) {
            PyErr_SetString(PyExc_ValueError, "a recorded str has no UTF-8 form");
            return NULL;
        }
        total += s;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (!out) return NULL;
    char *p = mp_array_hdr(PyBytes_AS_STRING(out), n);
    for (uint64_t i = 0; i < n; i++) {
        Rec *r = &self->slots[(self->head + i) & self->mask];
        if (r->kind != K_BLOB) {
            p = compact_write(r, p);
            continue;
        }
        const char *from =
            r->big ? PyBytes_AS_STRING(r->big) : self->arena + (r->voff & (self->asize - 1));
        memcpy(p, from, r->vlen);
        p += r->vlen;
    }
    for (uint64_t i = 0; i < n; i++) ring_pop(self);
    self->reads += (int64_t)n;
    unstall_if_working(self);
    if (_PyBytes_Resize(&out, p - PyBytes_AS_STRING(out)) < 0) return NULL;
    return out;
}

/* Write all of buf to fd; -1 with OSError set. The GIL is kept: a producer letting
 * go of the oldest records (drop_oldest) must not do so while they are written. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* drain_to(fd, max_n): the oldest records (up to max_n) written to fd as the msgpack of
 * a list of them, then removed: (n, bytes written). Nothing of the Python heap is
 * used (the shipper's spool while the program traces its memory); on an OSError
 * the records stay in the ring. */
static PyObject *Ring_drain_to(Ring *self, PyObject *const *args, Py_ssize_t nargs) {
    int fd = nargs >= 1 ? PyObject_AsFileDescriptor(args[0]) : -1;
    if (fd < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "drain_to(fd, max_n=...)");
        return NULL;
    }
    long long n = drain_count(self, args + 1, nargs - 1, "drain_to");
    if (n < 0) return NULL;
    size_t total = MP_HDR_MAX;
    for (uint64_t i = 0; i < (uint64_t)n; i++) {
        Rec *r = &self->slots[(self->head + i) & self->mask];
        Py_ssize_t sz = r->kind == K_BLOB ? (Py_ssize_t)r->vlen : compact_size(r);
        if (sz < 0) {
            PyErr_SetString(PyExc_ValueError, "a recorded str has no UTF-8 form");
            return NULL;
        }
        total += (size_t)sz;
    }
    char *buf = malloc(total);
    if (!buf) return PyErr_NoMemory();
    char *p = mp_array_hdr(buf, (size_t)n);
    for (uint64_t i = 0; i < (uint64_t)n; i++) {
        Rec *r = &self->slots[(self->head + i) & self->mask];
        if (r->kind != K_BLOB) {
            p = compact_write(r, p);
            continue;
        }
        memcpy(p, r->big ? PyBytes_AS_STRING(r->big) : self->arena + (r->voff & (self->asize - 1)),
               r->vlen);
        p += r->vlen;
    }
    size_t used = (size_t)(p - buf);
    int rc = write_all(fd, buf, used);
    free(buf);
    if (rc < 0) return NULL;
    for (long long i = 0; i < n; i++) ring_pop(self);
    self->reads += n;
    unstall_if_working(self);
    return Py_BuildValue("(LK)", n, (unsigned long long)used);
}

static PyObject *Ring_drain_raw(Ring *self, PyObject *const *args, Py_ssize_t nargs) {
    long long n = drain_count(self, args, nargs, "drain_raw");
    if (n < 0) return NULL;
    PyObject *data = drain_bytes(self, (uint64_t)n);
    if (!data) return NULL;
    return Py_BuildValue("(LN)", n, data);
}

/* Decoded records: msgpack arrays at the top as tuples (what was appended). */
static PyObject *decoded(PyObject *data) {
    PyObject *decode = msgspec_fn(&mp_decode_fn, "decode");
    PyObject *out = decode ? PyObject_CallOneArg(decode, data) : NULL;
    if (!out) return NULL;
    if (!PyList_CheckExact(out)) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_RuntimeError, "drained records did not decode to a list");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(out); i++) {
        PyObject *item = PyList_GET_ITEM(out, i);
        if (PyList_CheckExact(item)) {
            PyObject *t = PyList_AsTuple(item);
            if (!t) { Py_DECREF(out); return NULL; }
            PyList_SetItem(out, i, t);
        }
    }
    return out;
}

static PyObject *Ring_drain(Ring *self, PyObject *const *args, Py_ssize_t nargs) {
    long long n = drain_count(self, args, nargs, "drain");
    if (n < 0) return NULL;
    PyObject *data = drain_bytes(self, (uint64_t)n);
    if (!data) return NULL;
    PyObject *out = decoded(data);
    Py_DECREF(data);
    return out;
}

static PyObject *Ring_set_policy(Ring *self, PyObject *arg) {
    if (check_policy(arg, "RingBuffer.set_policy(policy)", &self->policy) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Ring_set_block_timeout(Ring *self, PyObject *arg) {
    if (check_timeout(arg, "RingBuffer.set_block_timeout", &self->timeout) < 0) return NULL;
    Py_RETURN_NONE;
}

static int check_callable(PyObject *o, const char *where, PyObject **slot) {
    if (o != Py_None && !PyCallable_Check(o)) {
        PyErr_Format(PyExc_TypeError, "Expected a callable or None, got %R - at %s", o, where);
        return -1;
    }
    Py_XSETREF(*slot, o == Py_None ? NULL : Py_NewRef(o));
    return 0;
}

static PyObject *Ring_set_waker(Ring *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_waker(fn, wake_at) takes two arguments");
        return NULL;
    }
    long long at = PyLong_CheckExact(args[1]) ? PyLong_AsLongLong(args[1]) : -1;
    if (at < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "Expected `wake_at` an int >= 0, got %R - at RingBuffer.set_waker",
                     args[1]);
        return NULL;
    }
    if (check_callable(args[0], "RingBuffer.set_waker(fn)", &self->waker) < 0) return NULL;
    self->wake_at = (uint64_t)at;
    Py_RETURN_NONE;
}

static PyObject *Ring_set_on_stall(Ring *self, PyObject *arg) {
    if (check_callable(arg, "RingBuffer.set_on_stall(fn)", &self->on_stall) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Ring_stall(Ring *self, PyObject *Py_UNUSED(ignored)) {
    if (self->policy == P_BLOCK) ring_stall(self);
    Py_RETURN_NONE;
}

/* New capacity (and arena, unless its size was given); the newest records that fit
 * are kept, the oldest overflow dropped (counted). */
static PyObject *Ring_resize(Ring *self, PyObject *arg) {
    uint64_t c;
    if (check_capacity(arg, "RingBuffer.resize(capacity)", &c) < 0) return NULL;
    uint64_t a = self->arena_fixed ? self->asize : arena_for(c);
    Rec *slots = calloc(c, sizeof(Rec));
    char *arena = malloc(a);
    if (!slots || !arena) {
        free(slots);
        free(arena);
        return PyErr_NoMemory();
    }
    /* the newest records whose blobs fit the new arena laid end to end */
    uint64_t keep = 0, bytes = 0;
    while (keep < c && keep < self->tail - self->head) {
        Rec *r = &self->slots[(self->tail - 1 - keep) & self->mask];
        uint64_t b = in_arena(r) ? r->vlen : 0;
        if (bytes + b > a) break;
        bytes += b;
        keep++;
    }
    while (self->tail - self->head > keep) {
        ring_pop(self);
        self->dropped_oldest++;
    }
    uint64_t k = 0, at = 0;
    for (uint64_t i = self->head; i < self->tail; i++) {
        Rec *r = &self->slots[i & self->mask];
        if (in_arena(r)) {
            memcpy(arena + at, self->arena + (r->voff & (self->asize - 1)), r->vlen);
            r->voff = at;
            at += r->vlen;
        }
        slots[k++] = *r; /* moves ownership */
    }
    free(self->slots);
    free(self->arena);
    self->slots = slots;
    self->arena = arena;
    self->cap = c;
    self->mask = c - 1;
    self->asize = a;
    self->head = 0;
    self->tail = k;
    self->ahead = 0;
    self->atail = at;
    Py_RETURN_NONE;
}

static PyObject *policy_name(int p) {
    PyObject *s = p == P_OLDEST ? s_drop_oldest : p == P_NEWEST ? s_drop_newest : s_block;
    Py_INCREF(s);
    return s;
}

static PyObject *Ring_stats(Ring *self, PyObject *Py_UNUSED(ignored)) {
    int64_t drops =
        self->dropped_oldest + self->dropped_newest + self->block_timeouts + self->unencodable;
    return Py_BuildValue(
        "{sLsLsKsLsLsLsLsLsLsKsNsLsOsKsKsLsK}", "writes", self->writes, "reads", self->reads,
        "size", (unsigned long long)(self->tail - self->head), "drops", drops, "dropped_oldest",
        self->dropped_oldest, "dropped_newest", self->dropped_newest, "block_timeouts",
        self->block_timeouts, "unencodable", self->unencodable, "block_waits", self->block_waits,
        "capacity", (unsigned long long)self->cap, "policy", policy_name(self->policy), "stalls",
        self->stalls, "stalled", self->stalled ? Py_True : Py_False, "arena_bytes",
        (unsigned long long)self->asize, "arena_used",
        (unsigned long long)(self->atail - self->ahead), "big_records", self->big,
        "memory_bytes", (unsigned long long)(self->asize + self->cap * sizeof(Rec)));
}

static Py_ssize_t Ring_len(Ring *self) { return (Py_ssize_t)(self->tail - self->head); }
static PyObject *Ring_get_capacity(Ring *self, void *c) { return PyLong_FromUnsignedLongLong(self->cap); }
static PyObject *Ring_get_policy(Ring *self, void *c) { return policy_name(self->policy); }

static PyObject *Ring_repr(Ring *self) {
    PyObject *p = policy_name(self->policy);
    PyObject *r = PyUnicode_FromFormat("<RingBuffer %llu/%llu %U (C)>",
                                       (unsigned long long)(self->tail - self->head),
                                       (unsigned long long)self->cap, p);
    Py_DECREF(p);
    return r;
}

static PyMethodDef Ring_methods[] = {
    {"append", (PyCFunction)Ring_append, METH_O, "Add a record; False if refused (counted)."},
    {"drain", (PyCFunction)(void (*)(void))Ring_drain, METH_FASTCALL, "Oldest records, up to max_n."},
    {"drain_raw", (PyCFunction)(void (*)(void))Ring_drain_raw, METH_FASTCALL,
     "(n, msgpack of a list of the oldest n records), up to max_n."},
    {"drain_to", (PyCFunction)(void (*)(void))Ring_drain_to, METH_FASTCALL,
     "drain_to(fd, max_n): the oldest records written to fd as a msgpack list: (n, bytes)."},
    {"set_policy", (PyCFunction)Ring_set_policy, METH_O, NULL},
    {"set_block_timeout", (PyCFunction)Ring_set_block_timeout, METH_O, NULL},
    {"set_waker", (PyCFunction)(void (*)(void))Ring_set_waker, METH_FASTCALL,
     "fn() is called when the ring reaches wake_at records or is full (0: only when full)."},
    {"set_on_stall", (PyCFunction)Ring_set_on_stall, METH_O,
     "fn() is called when a blocking ring gives up waiting and starts dropping."},
    {"stall", (PyCFunction)Ring_stall, METH_NOARGS,
     "The consumer is failing: a blocking ring drops (counted) until drained empty."},
    {"resize", (PyCFunction)Ring_resize, METH_O, "New capacity; the oldest overflow is dropped."},
    {"stats", (PyCFunction)Ring_stats, METH_NOARGS, NULL},
    {NULL}};
static PyGetSetDef Ring_getset[] = {
    {"capacity", (getter)Ring_get_capacity, NULL, NULL, NULL},
    {"policy", (getter)Ring_get_policy, NULL, NULL, NULL},
    {NULL}};
static PySequenceMethods Ring_as_seq = {.sq_length = (lenfunc)Ring_len};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.RingBuffer",
    .tp_basicsize = sizeof(Ring),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ring_init,
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_methods = Ring_methods,
    .tp_getset = Ring_getset,
    .tp_as_sequence = &Ring_as_seq,
    .tp_repr = (reprfunc)Ring_repr,
    .tp_doc = "Bounded FIFO of encoded records with counted overflow (C); see ring.py.",
};

/* ------------------------------------------------------------------ Node, Cell */

typedef struct Node {
    PyObject_HEAD
    struct Node *parent;
    int64_t call_id, t0, scope_id;
    int32_t fid;
    int8_t sampled; /* -1 undecided, 0 no, 1 yes */
    int8_t recorded;
    int8_t awaiting; /* at an await (recorded by awaiting) not yet resumed: caught() asks */
    int32_t step_line; /* the line of its last yield or await (0: unknown): caught() compares */
    uint32_t epoch;
    PyObject *result, *frame;
    uint64_t chain; /* the chain this call belongs to (0: none), see enter() */
} Node;

static PyTypeObject NodeType;
#define NODE_FREELIST 256
static Node *node_free[NODE_FREELIST];
static int node_nfree = 0;

static Node *node_new(void) {
    Node *n;
    if (node_nfree) {
        n = node_free[--node_nfree];
        _Py_NewReference((PyObject *)n);
    } else {
        n = PyObject_New(Node, &NodeType);
        if (!n) return NULL;
    }
    n->parent = NULL;
    n->result = NULL;
    n->frame = NULL;
    n->chain = 0;
    n->awaiting = 0;
    n->step_line = 0;
    return n;
}

static void Node_dealloc(Node *n) {
    Node *p = n->parent;
    Py_CLEAR(n->result);
    Py_CLEAR(n->frame);
    if (node_nfree < NODE_FREELIST) node_free[node_nfree++] = n;
    else PyObject_Free(n);
    Py_XDECREF(p);
}

static PyTypeObject NodeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.Node",
    .tp_basicsize = sizeof(Node),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Node_dealloc,
};

typedef struct {
    PyObject_HEAD
    /* the context mapping (HAMT) this cell was made under: its identity only, no
     * reference - a reference would be a cycle (the mapping holds the cell), and
     * every context's cells and mappings would wait for the cyclic collector */
    PyObject *vars;
    Node *top;
    PyObject *cid;  /* the correlation id in that mapping (NULL: None) */
} Cell;

static void Cell_dealloc(Cell *c) {
    Py_CLEAR(c->top);
    Py_CLEAR(c->cid);
    PyObject_Free(c);
}

static PyTypeObject CellType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "elixirscope.capture._speedups.Cell",
    .tp_basicsize = sizeof(Cell),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Cell_dealloc,
};

/* Where the hooks find the current context's Cell without a contextvar lookup:
 * the same borrowed cache CPython keeps per ContextVar (valid while the thread
 * state's id and context version are unchanged: any set/reset of a variable and
 * any context switch bumps the version, and until then the context's mapping
 * holds the cell). Also the correlation id: a mapping never changes, and a cell
 * is only used in place under the mapping it was made in, so the correlation
 * read when the cell was made is still the current one.
 * The cache holds the cached cell's mapping (`vars`, a reference): while it is
 * held its address cannot be reused, so a cell whose `vars` is that address was
 * made under that very mapping. */
typedef struct {
    PyObject *stack_var, *corr_var;
    Cell *cell;     /* borrowed */
    PyObject *vars; /* a reference: the mapping current when `cell` was cached */
    uint64_t tsid, tsver;
} CellCache;

static inline Cell *cache_hit(CellCache *cc, PyThreadState *ts) {
#if CELL_INPLACE
    if (cc->cell && ts->id == cc->tsid && ts->context_ver == cc->tsver) return cc->cell;
#endif
    return NULL;
}

#if CELL_INPLACE
static inline PyObject *current_vars(PyThreadState *ts) {
    return ts->context ? ((ContextLayout *)ts->context)->ctx_vars : NULL;
}

/* Only this context can see `cell` (made under `vars`, the current mapping): the
 * mapping is held by the context alone (and the cache, when it is the cached
 * one) and the cell by one mapping node (`extra`: references the caller holds). */
static inline int owned(CellCache *cc, Cell *cell, PyObject *vars, Py_ssize_t extra) {
    return vars && cell->vars == vars && Py_REFCNT(vars) == 1 + (cc->vars == vars) &&
           Py_REFCNT(cell) == 1 + extra;
}
#endif

static inline void cache_set(CellCache *cc, PyThreadState *ts, Cell *cell) {
    cc->cell = cell;
    cc->tsid = ts->id;
    cc->tsver = ts->context_ver;
#if CELL_INPLACE
    PyObject *vars = current_vars(ts);
    if (vars != cc->vars) {
        PyObject *old = cc->vars;
        cc->vars = Py_XNewRef(vars);
        Py_XDECREF(old); /* last: freeing it may run code that comes back here */
    }
#endif
}

/* The current context's Cell, forked first unless only this context can see it.
 * Returns a borrowed pointer (the context holds it), NULL with an exception set. */
static Cell *own_cell(CellCache *cc) {
    PyThreadState *ts = PyThreadState_Get();
#if CELL_INPLACE
    Cell *hit = cache_hit(cc, ts);
    if (hit && owned(cc, hit, current_vars(ts), 0)) return hit;
#endif
    PyObject *got;
    if (PyContextVar_Get(cc->stack_var, NULL, &got) < 0) return NULL;
    Cell *cell = (Cell *)got; /* new reference or NULL */
#if CELL_INPLACE
    if (cell && owned(cc, cell, current_vars(ts), 1)) {
        Py_DECREF(cell);
        cache_set(cc, ts, cell);
        return cell;
    }
#endif
    Cell *fresh = PyObject_New(Cell, &CellType);
    if (!fresh) { Py_XDECREF(cell); return NULL; }
    fresh->vars = NULL;
    fresh->cid = NULL;
    fresh->top = cell ? cell->top : NULL;
    Py_XINCREF(fresh->top);
    Py_XDECREF(cell);
    PyObject *cid;
    if (PyContextVar_Get(cc->corr_var, NULL, &cid) < 0) { Py_DECREF(fresh); return NULL; }
    if (cid == Py_None) Py_CLEAR(cid);
    fresh->cid = cid;
    PyObject *tok = PyContextVar_Set(cc->stack_var, (PyObject *)fresh);
    if (!tok) { Py_DECREF(fresh); return NULL; }
    Py_DECREF(tok);
    Py_DECREF(fresh); /* the context's mapping holds it */
#if CELL_INPLACE
    ts = PyThreadState_Get();
    fresh->vars = current_vars(ts);
    cache_set(cc, ts, fresh);
#endif
    return fresh;
}

/* Read-only: the current top node (borrowed) or NULL; -1 on error. */
static int peek_top(CellCache *cc, Node **out) {
    PyThreadState *ts = PyThreadState_Get();
    Cell *hit = cache_hit(cc, ts);
    if (hit) { *out = hit->top; return 0; }
    PyObject *got;
    if (PyContextVar_Get(cc->stack_var, NULL, &got) < 0) return -1;
    *out = got ? ((Cell *)got)->top : NULL;
#if CELL_INPLACE
    if (got) cache_set(cc, ts, (Cell *)got);
#endif
    Py_XDECREF(got); /* the context keeps it alive */
    return 0;
}

/* ------------------------------------------------------------------ Hooks */

#define ARGS_MAX 64

typedef struct {
    PyObject *name;  /* "module.qualname" */
    PyObject *exit;  /* the Exit object */
    double sampling;
    int level;       /* 0 none, 1 boundaries, 2 args, 3 full */
    int gen;
    int coro;        /* a coroutine or async generator: its calls record the task's name */
    int recv;        /* names[0] is self/cls: shown by its class (set with `names`) */
    PyObject *file;  /* where it is defined (the registered filename) */
    int64_t line;
    /* which arguments are redacted: for the names tuple `names` under the
     * sensitive-word list `mask_key` (values._sensitive, held so its identity
     * cannot be reused); bit i set = names[i] redacted */
    PyObject *names, *mask_key;
    uint64_t mask;
    /* encoded once (malloc'd), copied into each record: msgpack of name then file */
    char *enc;
    uint32_t name_enc, file_enc;
    /* msgpack of each of `names`: names[i] is names_enc[names_off[i]:names_off[i + 1]] */
    char *names_enc;
    uint32_t names_off[ARGS_MAX + 1];
} Func;

typedef struct Hooks Hooks;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Hooks *hooks;
    int32_t fid;
} Exit;

struct Hooks {
    PyObject_HEAD
    Func *funcs;
    Py_ssize_t nfuncs;
    CellCache cc;
    PyObject *suspended;
    PyObject *capture_args, *safe_repr, *safe_attr, *exc_type_name, *exc_message, *values;
    PyObject *exc_where, *task_name; /* _pyhooks helpers: error site, asyncio task name */
    PyObject *objects; /* capture.objects.ObjectStates of this binding, made at the first attr */
    /* the C rendering of common values (see value_text); fast = 0 turns it off */
    int fast;
    Py_ssize_t limit;
    PyObject *values_dict, *redact, *redacted, *sens_key;
    uint64_t values_ver;
    Ring *ring;
    HLC *clock;
    Ids *ids;
    uint32_t epoch;
    uint64_t rng;
    uint32_t rng_generation; /* fork_generation when rng was last (re)seeded */
    int64_t calls, events, hook_errors, sampled_out, stack_mismatches;
    PyObject *last_error;
};

static PyTypeObject HooksType, ExitType;

static void hook_error(Hooks *h) {
    h->hook_errors++;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_NormalizeException(&et, &ev, &tb);
    PyObject *text = ev ? PyObject_Str(ev) : NULL;
    if (!text) PyErr_Clear();
    Py_XSETREF(h->last_error, text ? PyUnicode_FromFormat("%s: %U",
        et ? ((PyTypeObject *)et)->tp_name : "?", text) : NULL);
    if (!h->last_error) PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
}

/* Bumped in a forked child (pthread_atfork): each Hooks then mixes the new pid into its
 * draws, so a parent and its children (a server's workers) sample apart, as Python's
 * sampler does (integrations.sampling re-seeds at fork). */
static volatile uint32_t fork_generation;
static void after_fork_in_child(void) { fork_generation++; }

static inline double rng_next(Hooks *h) {
    if (h->rng_generation != fork_generation) {
        h->rng_generation = fork_generation;
        h->rng = mix64(h->rng ^ ((uint64_t)getpid() << 32) ^ (uint64_t)wall_ns()) | 1;
    }
    uint64_t x = h->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h->rng = x;
    return (x >> 11) * (1.0 / 9007199254740992.0);
}

static inline int64_t outer_scope(Hooks *h, Node *n) {
    Node *p = n->parent;
    return p && p->epoch == h->epoch ? p->scope_id : 0;
}

static inline PyObject *current_cid(Hooks *h) {
    PyObject *cid;
    if (PyContextVar_Get(h->cc.corr_var, NULL, &cid) < 0) return NULL;
    if (cid == Py_None) { Py_DECREF(cid); return NULL; }
    return cid; /* new ref or NULL */
}

/* The id an event of `node` records: the context's, else its chain's. New ref or NULL. */
static inline PyObject *event_cid(Hooks *h, Node *node) {
    PyObject *cid = current_cid(h);
    if (!cid) {
        if (PyErr_Occurred()) hook_error(h);
        if (node->chain && !(cid = chain_text(node->chain))) hook_error(h);
    }
    return cid;
}

/* --- values: the C rendering of common values ---
 *
 * Exactly what values.safe_repr(v) gives (same rules, same budget arithmetic)
 * for int, float, bool, None, str, bytes and lists/tuples of those (nested up
 * to values.MAX_DEPTH); anything else goes to values.safe_repr. Only builtin
 * reprs of exact builtin types are called, so no program code runs.
 * render() returns a new str, or NULL without an exception for "not handled"
 * (the caller falls back to Python), or NULL with an exception. */

#define V_MAX_DEPTH 4
#define V_MAX_WIDTH 16
#define SMALL_INT_MIN (-5)
#define SMALL_INT_MAX 1024
static PyObject *small_int_text[SMALL_INT_MAX - SMALL_INT_MIN + 1];
static PyObject *s_True, *s_False, *s_ellipsis, *s__sensitive, *s_space, *s_lt, *s_colon;

static PyObject *render(PyObject *v, Py_ssize_t budget, int depth, PyObject **active, int nactive);
static PyObject *known_text(PyObject *v, Py_ssize_t budget, int depth, PyObject **active,
                            int nactive);

/* --- redaction: what C must leave to Python (redaction.c_flags(), pushed by
 * set_redaction whenever the pipeline changes and read when Hooks start).
 * Python's answer for such a value is the redacted one; for any other value
 * it equals what C renders, because the pre-check below flags at least every
 * string the Python processors' triggers match. Until told: the safe side. */
#define R_SCAN_STR 1   /* strings the pre-check flags go to Python */
#define R_ALL_STR 2    /* every string (and bytes) goes to Python */
#define R_PAIRS 4      /* 2-item lists/tuples whose first item is a str */
#define R_LONG_INT 8   /* ints of 13 digits or more (card numbers) */
#define R_LOOKAHEAD 256 /* redaction.LOOKAHEAD: scanned past a cut */
static long redact_flags = R_ALL_STR | R_PAIRS | R_LONG_INT;

/* what each Latin-1 character is to the pre-check (filled at import) */
enum { C_PLAIN, C_DIGIT, C_SEP, C_TRIGGER, C_B };
static unsigned char char_class[256];

static void init_char_class(void) {
    for (int c = '0'; c <= '9'; c++) char_class[c] = C_DIGIT;
    char_class[' '] = char_class['-'] = C_SEP;
    char_class[':'] = char_class['='] = char_class['@'] = C_TRIGGER;
    char_class['b'] = char_class['B'] = C_B;
}

static inline int ci_word(const Py_UCS1 *s, const char *w, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++)
        if ((s[k] | 0x20) != (Py_UCS1)w[k]) return 0;
    return 1;
}

/* Could a text processor change the first budget + R_LOOKAHEAD characters of
 * `v`? Flags ':' '=' '@', "bearer"/"basic" in any case, and 13 digits in a
 * run where spaces and dashes may separate them; other than Latin-1: yes. */
static int scan_for_trigger(PyObject *v, Py_ssize_t n) {
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(v) < 0) { PyErr_Clear(); return 1; } /* a legacy string: Python decides */
#endif
    if (PyUnicode_KIND(v) != PyUnicode_1BYTE_KIND) return 1;
    const Py_UCS1 *s = PyUnicode_1BYTE_DATA(v);
    if (n > PyUnicode_GET_LENGTH(v)) n = PyUnicode_GET_LENGTH(v);
    int digits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        switch (char_class[s[i]]) {
        case C_PLAIN:
            digits = 0;
            break;
        case C_DIGIT:
            if (++digits >= 13) return 1;
            break;
        case C_SEP: /* a separator keeps a digit run going */
            break;
        case C_TRIGGER:
            return 1;
        case C_B:
            digits = 0;
            if ((i + 6 <= n && ci_word(s + i, "bearer", 6)) ||
                (i + 5 <= n && ci_word(s + i, "basic", 5)))
                return 1;
            break;
        }
    }
    return 0;
}

static int str_may_hold_secret(PyObject *v, Py_ssize_t budget) {
    if (redact_flags & R_ALL_STR) return 1;
    if (!(redact_flags & R_SCAN_STR)) return 0;
    return scan_for_trigger(v, budget + R_LOOKAHEAD);
}

/* redaction's pre-check for the built-in text processors: True where one of
 * them could find something in `text` (a superset of their triggers), else None */
static PyObject *Speedups_secret_trigger(PyObject *m, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "Expected `str`, got `%s` - at `secret_trigger(text)`",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
    if (scan_for_trigger(text, PY_SSIZE_T_MAX)) Py_RETURN_TRUE;
    Py_RETURN_NONE;
}

static PyObject *Speedups_set_redaction(PyObject *m, PyObject *arg) {
    long flags = PyLong_AsLong(arg);
    if (flags == -1 && PyErr_Occurred()) return NULL;
    redact_flags = flags;
    Py_RETURN_NONE;
}

static PyObject *Speedups_redaction_flags(PyObject *m, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLong(redact_flags);
}

static PyObject *render_int(PyObject *v, Py_ssize_t budget) {
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) return NULL;
    if (!overflow && x >= SMALL_INT_MIN && x <= SMALL_INT_MAX) {
        PyObject **slot = &small_int_text[x - SMALL_INT_MIN];
        if (!*slot && !(*slot = PyLong_Type.tp_repr(v))) return NULL;
        return Py_NewRef(*slot);
    }
    if ((redact_flags & R_LONG_INT) && (overflow || x >= 1000000000000LL || x <= -1000000000000LL))
        return NULL; /* may be a card number: Python decides */
    size_t bits;
    if (overflow) {
        bits = _PyLong_NumBits(v);
        if (bits == (size_t)-1 && PyErr_Occurred()) return NULL;
    } else {
        unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
        bits = u ? 64 - (size_t)__builtin_clzll(u) : 0;
    }
    /* more digits than the budget could show: say how big it is */
    if ((Py_ssize_t)bits > 3 * budget + 8) return PyUnicode_FromFormat("<int of %zu bits>", bits);
    return PyLong_Type.tp_repr(v);
}

/* repr(v) for an ASCII str with no quote, backslash or control character (most names,
 * keys and words): the text between single quotes, as str.__repr__ gives it; NULL
 * without an exception for any other str (str.__repr__ then). */
static PyObject *plain_ascii_repr(PyObject *v) {
    if (!PyUnicode_IS_ASCII(v)) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(v);
    const unsigned char *s = PyUnicode_1BYTE_DATA(v);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\') return NULL;
    }
    PyObject *out = PyUnicode_New(n + 2, 127);
    if (!out) return NULL;
    unsigned char *d = PyUnicode_1BYTE_DATA(out);
    d[0] = '\'';
    memcpy(d + 1, s, (size_t)n);
    d[n + 1] = '\'';
    return out;
}

static PyObject *str_repr(PyObject *v) {
    PyObject *r = plain_ascii_repr(v);
    return r || PyErr_Occurred() ? r : PyUnicode_Type.tp_repr(v);
}

static PyObject *render_str(PyObject *v, Py_ssize_t budget) {
    if (PyUnicode_GET_LENGTH(v) <= budget) return str_repr(v);
    PyObject *cut = PyUnicode_Substring(v, 0, budget + 1);
    if (!cut) return NULL;
    PyObject *r = str_repr(cut);
    Py_DECREF(cut);
    return r;
}

static PyObject *render_bytes(PyObject *v, Py_ssize_t budget) {
    if (PyBytes_GET_SIZE(v) <= budget) return PyBytes_Type.tp_repr(v);
    PyObject *cut = PyBytes_FromStringAndSize(PyBytes_AS_STRING(v), budget + 1);
    if (!cut) return NULL;
    PyObject *r = PyBytes_Type.tp_repr(cut);
    Py_DECREF(cut);
    return r;
}

/* values._redact_cache (name -> whether a value so named is redacted; cleared, never
 * replaced, when the rules change) and values.REDACTED, once Hooks have read them: a
 * dict is rendered here only when each of its str keys has its verdict cached. */
static PyObject *v_redact_cache, *v_redacted;
/* values._word_cache (a pair's first item -> whether it is a sensitive word, for the
 * "pairs" rule; cleared, never replaced): a pair is rendered here once its verdict is. */
static PyObject *v_word_cache;

/* A container's shown items: "k: v" (key set) or "v" (key NULL), owned; at most
 * V_MAX_WIDTH of them and the "..." that says more were left out. */
typedef struct {
    PyObject *key[V_MAX_WIDTH + 1], *val[V_MAX_WIDTH + 1];
    int n;
} Items;

static void items_clear(Items *it) {
    for (int i = 0; i < it->n; i++) {
        Py_XDECREF(it->key[i]);
        Py_DECREF(it->val[i]);
    }
    it->n = 0;
}

static inline void write_ascii(int kind, void *data, Py_ssize_t *pos, const char *s) {
    for (; *s; s++) PyUnicode_WRITE(kind, data, (*pos)++, (Py_UCS4)(unsigned char)*s);
}

/* `part` written into `out` (made by PyUnicode_New, wide enough) at *pos: a plain copy
 * when both are one byte a character. 0, or -1 with the error. */
static inline int write_text(PyObject *out, int kind, void *data, Py_ssize_t *pos,
                             PyObject *part) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(part);
    if (kind == PyUnicode_1BYTE_KIND && PyUnicode_KIND(part) == PyUnicode_1BYTE_KIND) {
        memcpy((Py_UCS1 *)data + *pos, PyUnicode_1BYTE_DATA(part), (size_t)len);
    } else if (PyUnicode_CopyCharacters(out, *pos, part, 0, len) < 0) {
        return -1;
    }
    *pos += len;
    return 0;
}

/* A str for `extra` ASCII characters and the strs `parts` (NULL: none), to be written
 * with write_ascii and write_text. New ref. */
static PyObject *text_for(PyObject *const *parts, int n, Py_ssize_t extra) {
    Py_UCS4 maxchar = 127;
    for (int i = 0; i < n; i++) {
        if (!parts[i]) continue;
        extra += PyUnicode_GET_LENGTH(parts[i]);
        if (PyUnicode_MAX_CHAR_VALUE(parts[i]) > maxchar) maxchar = PyUnicode_MAX_CHAR_VALUE(parts[i]);
    }
    return PyUnicode_New(extra, maxchar);
}

/* The strs `parts` (NULL: skipped) and ASCII `tail` joined as one str. New ref. */
static PyObject *texts_joined(PyObject *const *parts, int n, const char *tail) {
    PyObject *out = text_for(parts, n, (Py_ssize_t)strlen(tail));
    if (!out) return NULL;
    int kind = PyUnicode_KIND(out);
    void *data = PyUnicode_DATA(out);
    Py_ssize_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (parts[i] && write_text(out, kind, data, &pos, parts[i]) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    write_ascii(kind, data, &pos, tail);
    return out;
}

/* [name] + open + the items joined by ", " (a pair as key + `pair` + value) + close,
 * made as one str (no list, no format); clears the items. */
static PyObject *items_joined(Items *it, PyObject *name, const char *open, const char *pair,
                              const char *close) {
    Py_ssize_t ascii = (Py_ssize_t)(strlen(open) + strlen(close)) + (it->n ? 2 * (it->n - 1) : 0);
    PyObject *whole[1 + 2 * (V_MAX_WIDTH + 1)]; /* name, then each item's key and value */
    int nwhole = 0;
    whole[nwhole++] = name;
    for (int i = 0; i < it->n; i++) {
        whole[nwhole++] = it->key[i];
        whole[nwhole++] = it->val[i];
        if (it->key[i]) ascii += (Py_ssize_t)strlen(pair);
    }
    PyObject *out = text_for(whole, nwhole, ascii);
    if (!out) {
        items_clear(it);
        return NULL;
    }
    int kind = PyUnicode_KIND(out);
    void *data = PyUnicode_DATA(out);
    Py_ssize_t pos = 0;
    for (int i = 0; i < nwhole; i++) {
        if (i == 1) write_ascii(kind, data, &pos, open);
        else if (i > 1 && i % 2 == 1) write_ascii(kind, data, &pos, ", ");
        PyObject *part = whole[i];
        if (!part) continue;
        if (write_text(out, kind, data, &pos, part) < 0) {
            Py_DECREF(out);
            items_clear(it);
            return NULL;
        }
        if (i > 0 && i % 2 == 1) write_ascii(kind, data, &pos, pair); /* after a key */
    }
    if (nwhole == 1) write_ascii(kind, data, &pos, open);
    write_ascii(kind, data, &pos, close);
    items_clear(it);
    return out;
}

static inline void items_add(Items *it, PyObject *key, PyObject *val) { /* takes both */
    it->key[it->n] = key;
    it->val[it->n++] = val;
}

static PyObject *render_seq(PyObject *v, int is_tuple, Py_ssize_t budget, int depth,
                            PyObject **active, int nactive) {
    const char *open = is_tuple ? "(" : "[", *close = is_tuple ? ")" : "]";
    for (int i = 0; i < nactive; i++)
        if (active[i] == v) return PyUnicode_FromFormat("%s...%s", open, close);
    Py_ssize_t n = is_tuple ? PyTuple_GET_SIZE(v) : PyList_GET_SIZE(v);
    if (n == 0) return PyUnicode_FromString(is_tuple ? "()" : "[]");
    int hide_second = 0; /* ("password", x): x is not shown (values._pair_items) */
    PyObject *first = is_tuple ? PyTuple_GET_ITEM(v, 0) : PyList_GET_ITEM(v, 0);
    if ((redact_flags & R_PAIRS) && n == 2 && PyUnicode_CheckExact(first)) {
        PyObject *verdict = v_word_cache ? PyDict_GetItemWithError(v_word_cache, first) : NULL;
        if (!verdict) return NULL; /* not judged yet: Python decides (and caches it) */
        hide_second = verdict == Py_True;
    }
    if (depth >= V_MAX_DEPTH) return PyUnicode_FromFormat("%s...%s", open, close);
    active[nactive] = v;
    Items it;
    it.n = 0;
    Py_ssize_t used = 2;
    for (Py_ssize_t i = 0; i < (is_tuple ? PyTuple_GET_SIZE(v) : PyList_GET_SIZE(v)); i++) {
        if (i >= V_MAX_WIDTH || used >= budget) {
            items_add(&it, NULL, Py_NewRef(s_ellipsis));
            break;
        }
        PyObject *item = is_tuple ? PyTuple_GET_ITEM(v, i) : PyList_GET_ITEM(v, i);
        Py_INCREF(item);
        PyObject *part = i == 1 && hide_second
                             ? Py_NewRef(v_redacted)
                             : render(item, budget - used, depth + 1, active, nactive + 1);
        Py_DECREF(item);
        if (!part) {
            items_clear(&it);
            return NULL;
        }
        used += PyUnicode_GET_LENGTH(part) + 2;
        items_add(&it, NULL, part);
    }
    return items_joined(&it, NULL, open, "", is_tuple && PyTuple_GET_SIZE(v) == 1 ? ",)" : close);
}


/* values._constant_texts: a library class -> how each of its instances is shown */
static PyObject *v_constant_texts;
/* values._object_kinds (id(class) -> (class, mro, kind, __dict__ getter, needs)) and
 * values._orm_texts ((id(class), primary key) -> (class, text)): see known_text */
static PyObject *v_object_kinds, *v_orm_texts;
static PyObject *s_sa_state, *s_key, *s_scope, *s_type, *s_method, *s_path, *s_WS;
#define KIND_ORM 1  /* values._ORM */
#define KIND_ASGI 2 /* values._ASGI */
#define KIND_PLAIN 3 /* values._PLAIN */

static PyObject *render_dict(PyObject *v, Py_ssize_t budget, int depth, PyObject **active,
                             int nactive) {
    for (int i = 0; i < nactive; i++)
        if (active[i] == v) return PyUnicode_FromString("{...}");
    if (PyDict_GET_SIZE(v) == 0) return PyUnicode_FromString("{}");
    if (depth >= V_MAX_DEPTH) return PyUnicode_FromString("{...}");
    if (!v_redact_cache || !v_redacted) return NULL;
    active[nactive] = v;
    Items it;
    it.n = 0;
    Py_ssize_t used = 2, pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(v, &pos, &key, &value)) {
        if (i++ >= V_MAX_WIDTH || used >= budget) {
            items_add(&it, NULL, Py_NewRef(s_ellipsis));
            break;
        }
        int hidden = 0;
        if (PyUnicode_CheckExact(key)) { /* values.redact(key), from its cache */
            PyObject *verdict = PyDict_GetItemWithError(v_redact_cache, key);
            if (!verdict) { /* not judged yet: Python judges (and caches) it */
                items_clear(&it);
                return NULL;
            }
            hidden = verdict == Py_True;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        PyObject *k = render(key, budget - used, depth + 1, active, nactive + 1);
        PyObject *t = NULL;
        if (k) {
            t = hidden ? Py_NewRef(v_redacted)
                       : render(value, budget - used - PyUnicode_GET_LENGTH(k) - 2, depth + 1,
                                active, nactive + 1);
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (!k || !t) {
            Py_XDECREF(k);
            items_clear(&it);
            return NULL; /* not handled (or an error, still set) */
        }
        used += PyUnicode_GET_LENGTH(k) + PyUnicode_GET_LENGTH(t) + 4;
        items_add(&it, k, t);
    }
    return items_joined(&it, NULL, "{", ": ", "}");
}

/* The texts of interned strs shown whole (a dict's keys, the program's literals: the same
 * objects call after call), by identity, under the redaction flags they were shown
 * with. Each slot holds its str: its address is not reused while cached. */
#define STR_SLOTS 256
static struct {
    PyObject *str, *text;
    long flags;
} str_slot[STR_SLOTS];

static PyObject *render_whole_str(PyObject *v) {
    size_t i = (size_t)(((uint64_t)(uintptr_t)v * 0x9E3779B97F4A7C15ULL) >> 56); /* 8 bits */
    if (str_slot[i].str == v && str_slot[i].flags == redact_flags) return Py_NewRef(str_slot[i].text);
    if (str_may_hold_secret(v, PyUnicode_GET_LENGTH(v))) return NULL; /* the whole is scanned */
    PyObject *text = str_repr(v);
    if (text && PyUnicode_CHECK_INTERNED(v)) {
        PyObject *old_str = str_slot[i].str, *old_text = str_slot[i].text;
        str_slot[i].str = Py_NewRef(v);
        str_slot[i].text = Py_NewRef(text);
        str_slot[i].flags = redact_flags;
        Py_XDECREF(old_str);
        Py_XDECREF(old_text);
    }
    return text;
}

static PyObject *render(PyObject *v, Py_ssize_t budget, int depth, PyObject **active, int nactive) {
    PyTypeObject *t = Py_TYPE(v);
    if (budget < 1) budget = 1;
    if (t == &PyUnicode_Type) {
        if (PyUnicode_GET_LENGTH(v) <= budget) return render_whole_str(v);
        return str_may_hold_secret(v, budget) ? NULL : render_str(v, budget);
    }
    if (t == &PyLong_Type) return render_int(v, budget);
    if (v == Py_True) return Py_NewRef(s_True);
    if (v == Py_False) return Py_NewRef(s_False);
    if (v == Py_None) return Py_NewRef(s_None_text);
    if (t == &PyBytes_Type)
        return redact_flags & (R_SCAN_STR | R_ALL_STR) ? NULL : render_bytes(v, budget);
    if (t == &PyTuple_Type) return render_seq(v, 1, budget, depth, active, nactive);
    if (t == &PyList_Type) return render_seq(v, 0, budget, depth, active, nactive);
    if (t == &PyDict_Type) return render_dict(v, budget, depth, active, nactive);
    if (t == &PyFloat_Type) return PyFloat_Type.tp_repr(v);
    return known_text(v, budget, depth, active, nactive); /* else NULL: not handled here */
}

/* obj's own __dict__ through `getter`, the interpreter's getter values._dict_getter
 * found for its class (as Python's getter.__get__(obj, t)); NULL without an exception
 * when it is not an exact dict or cannot be read (Python then decides). */
static PyObject *instance_dict(PyObject *getter, PyObject *obj, PyTypeObject *t) {
    descrgetfunc get = Py_TYPE(getter)->tp_descr_get;
    PyObject *d = get ? get(getter, obj, (PyObject *)t) : NULL;
    if (!d) {
        PyErr_Clear();
        return NULL;
    }
    if (!PyDict_CheckExact(d)) Py_CLEAR(d);
    return d;
}

/* values._orm_text: a mapped instance as <Task id=3>, when Python has shown one with
 * that class and key before (the text is in values._orm_texts); else NULL. */
static PyObject *orm_text(PyObject *v, PyTypeObject *t, PyObject *d, PyObject *needs) {
    if (!PyTuple_CheckExact(needs) || PyTuple_GET_SIZE(needs) != 3 || !v_orm_texts) return NULL;
    PyObject *state = PyDict_GetItemWithError(d, s_sa_state);
    PyTypeObject *st = state ? Py_TYPE(state) : NULL;
    if (!state || (PyObject *)st != PyTuple_GET_ITEM(needs, 0) ||
        st->tp_mro != PyTuple_GET_ITEM(needs, 1))
        return NULL;
    Py_INCREF(state);
    PyObject *sd = instance_dict(PyTuple_GET_ITEM(needs, 2), state, st);
    Py_DECREF(state); /* d, which the caller holds, keeps it */
    if (!sd) return NULL;
    PyObject *text = NULL, *key = PyDict_GetItemWithError(sd, s_key);
    PyObject *pk = key && PyTuple_CheckExact(key) && PyTuple_GET_SIZE(key) >= 2
                       ? PyTuple_GET_ITEM(key, 1) : NULL;
    if (pk && PyTuple_CheckExact(pk)) {
        int ints = 1;
        for (Py_ssize_t i = 0; ints && i < PyTuple_GET_SIZE(pk); i++)
            ints = PyLong_CheckExact(PyTuple_GET_ITEM(pk, i));
        PyObject *id = ints ? PyLong_FromVoidPtr(t) : NULL;
        PyObject *ck = id ? PyTuple_Pack(2, id, pk) : NULL;
        PyObject *seen = ck ? PyDict_GetItemWithError(v_orm_texts, ck) : NULL;
        if (seen && PyTuple_CheckExact(seen) && PyTuple_GET_SIZE(seen) == 2 &&
            PyTuple_GET_ITEM(seen, 0) == (PyObject *)t &&
            PyUnicode_CheckExact(PyTuple_GET_ITEM(seen, 1)))
            text = Py_NewRef(PyTuple_GET_ITEM(seen, 1));
        Py_XDECREF(id);
        Py_XDECREF(ck);
    }
    Py_DECREF(sd);
    PyErr_Clear();
    return text;
}

/* values._library_text for an ASGI connection: `prefix` ("<module.Name") and its
 * scope's "METHOD path" (cut at 80), when the text rules could not change that; else NULL. */
static PyObject *asgi_text(PyObject *d, PyObject *prefix) {
    PyObject *scope = PyDict_GetItemWithError(d, s_scope);
    if (!scope || !PyDict_CheckExact(scope) || !PyUnicode_CheckExact(prefix)) goto no;
    PyObject *kind = PyDict_GetItemWithError(scope, s_type);
    if (!kind || !PyUnicode_CheckExact(kind) ||
        (PyUnicode_CompareWithASCIIString(kind, "http") != 0 &&
         PyUnicode_CompareWithASCIIString(kind, "websocket") != 0))
        goto no;
    PyObject *method = PyDict_GetItemWithError(scope, s_method);
    if (!method && PyErr_Occurred()) goto no;
    PyObject *path = PyDict_GetItemWithError(scope, s_path);
    if (!method) method = s_WS;
    if (!path || !PyUnicode_CheckExact(method) || !PyUnicode_CheckExact(path)) goto no;
    PyObject *shown_parts[3] = {method, s_space, path};
    PyObject *shown = texts_joined(shown_parts, 3, "");
    if (!shown) goto no;
    if (str_may_hold_secret(shown, PyUnicode_GET_LENGTH(shown))) {
        Py_DECREF(shown);
        goto no;
    }
    if (PyUnicode_GET_LENGTH(shown) > 80) {
        PyObject *cut = PyUnicode_Substring(shown, 0, 77);
        Py_SETREF(shown, cut ? PyUnicode_Concat(cut, s_ellipsis) : NULL);
        Py_XDECREF(cut);
        if (!shown) goto no;
    }
    PyObject *out_parts[3] = {prefix, s_space, shown};
    PyObject *out = texts_joined(out_parts, 3, ">");
    Py_DECREF(shown);
    if (!out) PyErr_Clear();
    return out;
no:
    PyErr_Clear();
    return NULL;
}

/* values._render_object for an instance of a program's class shown by its fields:
 * `name`(k=v, ...) from its __dict__ `d`, each value rendered here (redacted by its
 * name's cached verdict), at most V_MAX_WIDTH then "..."; NULL without an exception
 * for anything else (a key not a str, a verdict not cached, a value render() leaves
 * to Python, a mapped instance): Python renders it. */
static PyObject *plain_text(PyObject *v, PyObject *d, PyObject *name, Py_ssize_t budget,
                            int depth, PyObject **active, int nactive) {
    if (!PyUnicode_CheckExact(name) || !v_redact_cache || !v_redacted) return NULL;
    if (PyDict_GetItemWithError(d, s_sa_state) || PyErr_Occurred()) return NULL;
    int seen = depth >= V_MAX_DEPTH;
    for (int i = 0; !seen && i < nactive; i++) seen = active[i] == v;
    if (seen) return PyUnicode_FromFormat("%U(...)", name); /* a cycle, or deep enough */
    active[nactive] = v;
    budget -= PyUnicode_GET_LENGTH(name);
    Items it;
    it.n = 0;
    Py_ssize_t used = 2, pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(d, &pos, &key, &value)) {
        if (i++ >= V_MAX_WIDTH || used >= budget) {
            items_add(&it, NULL, Py_NewRef(s_ellipsis));
            break;
        }
        PyObject *verdict = PyUnicode_CheckExact(key) ? PyDict_GetItemWithError(v_redact_cache, key) : NULL;
        if (!verdict) {
            items_clear(&it);
            return NULL;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        PyObject *t = verdict == Py_True
                          ? Py_NewRef(v_redacted)
                          : render(value, budget - used, depth + 1, active, nactive + 1);
        Py_DECREF(value);
        if (!t) {
            Py_DECREF(key);
            items_clear(&it);
            return NULL;
        }
        used += PyUnicode_GET_LENGTH(key) + PyUnicode_GET_LENGTH(t) + 3;
        items_add(&it, key, t);
    }
    return items_joined(&it, name, "(", "=", ")");
}

/* An instance of a class in values._object_kinds shown as Python shows it (a mapped
 * instance, an ASGI connection, a program's object by its fields), at any depth of a
 * value, while the class's mro is the one Python saw; NULL without an exception when
 * not handled here (Python renders the whole value). */
#if PY_VERSION_HEX < 0x030C0000
/* values._object_kinds' entry for a class, in front of the dict (keyed by id(class): a
 * PyLong made for each lookup): a direct-mapped cache valid while the dict's version tag
 * (3.11: changed by any change of the dict) is the one it was read under. Each slot
 * holds its entry, which holds the class: its address is not reused while cached. */
#define KIND_SLOTS 64
static struct {
    PyTypeObject *t;
    uint64_t version;
    PyObject *entry;
} kind_slot[KIND_SLOTS];
#endif

/* The entry of `t` in values._object_kinds (a new reference), or NULL (an error set or
 * not). */
static PyObject *object_kind(PyTypeObject *t) {
#if PY_VERSION_HEX < 0x030C0000
    size_t i = (size_t)(((uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15ULL) >> 58); /* 6 bits */
    uint64_t version = ((PyDictObject *)v_object_kinds)->ma_version_tag;
    if (kind_slot[i].t == t && kind_slot[i].version == version) return Py_NewRef(kind_slot[i].entry);
#endif
    PyObject *id = PyLong_FromVoidPtr(t);
    PyObject *e = id ? PyDict_GetItemWithError(v_object_kinds, id) : NULL;
    Py_XDECREF(id);
    if (!e) return NULL;
    Py_INCREF(e);
#if PY_VERSION_HEX < 0x030C0000
    PyObject *old = kind_slot[i].entry;
    kind_slot[i].t = t;
    kind_slot[i].version = version;
    kind_slot[i].entry = Py_NewRef(e);
    Py_XDECREF(old); /* last: the last reference to a class may run its weak references' code */
#endif
    return e;
}

static PyObject *known_text(PyObject *v, Py_ssize_t budget, int depth, PyObject **active,
                            int nactive) {
    if (!v_object_kinds || !PyDict_CheckExact(v_object_kinds)) return NULL;
    PyTypeObject *t = Py_TYPE(v);
    PyObject *e = object_kind(t); /* held: reading a __dict__ may run code that changes
                                     * values._object_kinds */
    if (!e || !PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) != 5 ||
        PyTuple_GET_ITEM(e, 0) != (PyObject *)t || PyTuple_GET_ITEM(e, 1) != t->tp_mro) {
        Py_XDECREF(e);
        PyErr_Clear();
        return NULL;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(e, 2));
    if (kind == -1 && PyErr_Occurred()) {
        Py_DECREF(e);
        PyErr_Clear();
        return NULL;
    }
    PyObject *out = NULL, *d = instance_dict(PyTuple_GET_ITEM(e, 3), v, t);
    PyObject *needs = PyTuple_GET_ITEM(e, 4);
    if (d && kind == KIND_ORM) out = orm_text(v, t, d, needs);
    else if (d && kind == KIND_ASGI) out = asgi_text(d, needs);
    else if (d && kind == KIND_PLAIN) out = plain_text(v, d, needs, budget, depth, active, nactive);
    Py_XDECREF(d);
    Py_DECREF(e);
    PyErr_Clear();
    return out;
}

#if PY_VERSION_HEX < 0x030C0000
/* The last dict value_text rendered whose keys are strs and values scalars (str, int,
 * float, bool, None): a value returned through several frames (`return helper(...)`) is
 * the same object at each return. Its text stands while the dict (3.11: its version tag
 * changes at any change of it), the limit, the redaction flags and the cache of names'
 * verdicts are those it was made under. Held, so its address is not reused. */
static struct {
    PyObject *dict, *text, *verdicts;
    uint64_t version, verdicts_version;
    Py_ssize_t limit;
    long flags;
} last_dict;

static inline int scalar_items(PyObject *d) {
    Py_ssize_t pos = 0;
    PyObject *k, *x;
    while (PyDict_Next(d, &pos, &k, &x)) {
        PyTypeObject *t = Py_TYPE(x);
        if (!PyUnicode_CheckExact(k) ||
            !(t == &PyUnicode_Type || t == &PyLong_Type || t == &PyFloat_Type ||
              t == &PyBool_Type || x == Py_None))
            return 0;
    }
    return 1;
}

static PyObject *last_dict_text(Hooks *h, PyObject *v) {
    if (last_dict.dict != v || !v_redact_cache || last_dict.verdicts != v_redact_cache ||
        last_dict.version != ((PyDictObject *)v)->ma_version_tag ||
        last_dict.verdicts_version != ((PyDictObject *)v_redact_cache)->ma_version_tag ||
        last_dict.limit != h->limit || last_dict.flags != redact_flags)
        return NULL;
    return Py_NewRef(last_dict.text);
}

static void last_dict_keep(Hooks *h, PyObject *v, PyObject *text) {
    if (!v_redact_cache || !PyDict_CheckExact(v_redact_cache) || !scalar_items(v)) return;
    PyObject *old_dict = last_dict.dict, *old_text = last_dict.text, *old_verdicts = last_dict.verdicts;
    last_dict.dict = Py_NewRef(v);
    last_dict.text = Py_NewRef(text);
    last_dict.verdicts = Py_NewRef(v_redact_cache);
    last_dict.version = ((PyDictObject *)v)->ma_version_tag;
    last_dict.verdicts_version = ((PyDictObject *)v_redact_cache)->ma_version_tag;
    last_dict.limit = h->limit;
    last_dict.flags = redact_flags;
    Py_XDECREF(old_dict); /* last: changed since, freeing it may run code that comes here */
    Py_XDECREF(old_text);
    Py_XDECREF(old_verdicts);
}
#endif

/* values.safe_repr(v) at the default limit, in C when the type allows. */
static PyObject *value_text(Hooks *h, PyObject *v) {
    if (h->fast) {
#if PY_VERSION_HEX < 0x030C0000
        int is_dict = PyDict_CheckExact(v);
        if (is_dict) {
            PyObject *known = last_dict_text(h, v);
            if (known) return known;
        }
#endif
        PyObject *active[V_MAX_DEPTH + 2];
        PyObject *s = render(v, h->limit, 0, active, 0);
#if PY_VERSION_HEX < 0x030C0000
        if (s && is_dict && PyUnicode_GET_LENGTH(s) <= h->limit) last_dict_keep(h, v, s);
#endif
        if (s) {
            Py_ssize_t n = PyUnicode_GET_LENGTH(s);
            if (n <= h->limit || v == Py_True || v == Py_False || v == Py_None) return s;
            PyObject *cut = PyUnicode_Substring(s, 0, h->limit - 3);
            Py_DECREF(s);
            if (!cut) return NULL;
            PyObject *out = PyUnicode_Concat(cut, s_ellipsis);
            Py_DECREF(cut);
            return out;
        }
        if (PyErr_Occurred()) return NULL;
        /* an exact type key: hashing a class of another metaclass could run its code */
        if (v_constant_texts && Py_IS_TYPE((PyObject *)Py_TYPE(v), &PyType_Type)) {
            PyObject *text = PyDict_GetItemWithError(v_constant_texts, (PyObject *)Py_TYPE(v));
            if (text) return Py_NewRef(text);
            if (PyErr_Occurred()) return NULL;
        }
    }
    return PyObject_CallOneArg(h->safe_repr, v);
}

/* A method's receiver as values.capture_args shows it: `<ClassName>` (the class
 * itself for `cls`), never its fields. */
static PyObject *receiver_text(PyObject *v) {
    PyTypeObject *t = PyType_Check(v) ? (PyTypeObject *)v : Py_TYPE(v);
    PyObject *name = PyType_GetName(t);
    if (!name) return NULL;
    PyObject *parts[2] = {s_lt, name};
    PyObject *out = texts_joined(parts, 2, ">");
    Py_DECREF(name);
    return out;
}

/* A call's values: its arguments as text and its asyncio task's name. */
typedef struct {
    PyObject *names;           /* borrowed: the names tuple (code constant) */
    PyObject *texts[ARGS_MAX]; /* owned: n texts, in the order of names */
    Py_ssize_t n;              /* -1: no arguments recorded */
    PyObject *dict;            /* owned: or the dict values.capture_args made */
    PyObject *task;            /* owned: the task's name, or NULL */
} CallValues;

static void call_values_clear(CallValues *cv) {
    for (Py_ssize_t i = 0; i < cv->n; i++) Py_CLEAR(cv->texts[i]);
    cv->n = -1;
    Py_CLEAR(cv->dict);
    Py_CLEAR(cv->task);
}

/* The msgpack of a function's name and file, kept on it. */
static int func_encode(Func *f) {
    Py_ssize_t a = text_size(f->name), b = text_size(f->file);
    if (a < 0 || b < 0) {
        PyErr_SetString(PyExc_ValueError, "a function's name or file has no UTF-8 form");
        return -1;
    }
    char *enc = malloc((size_t)(a + b));
    if (!enc) { PyErr_NoMemory(); return -1; }
    char *p = mp_text(enc, f->name);
    f->name_enc = (uint32_t)(p - enc);
    f->file_enc = (uint32_t)(mp_text(p, f->file) - p);
    free(f->enc);
    f->enc = enc;
    return 0;
}

/* The msgpack of each argument name in `names` (a tuple of at most ARGS_MAX strs). */
static int names_encode(Func *f, PyObject *names) {
    Py_ssize_t n = PyTuple_GET_SIZE(names), total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        Py_ssize_t size = PyUnicode_CheckExact(name) ? text_size(name) : -1;
        if (size < 0) {
            PyErr_SetString(PyExc_ValueError, "an argument name is not a str with UTF-8");
            return -1;
        }
        total += size;
    }
    char *enc = malloc((size_t)total + 1), *p = enc;
    if (!enc) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        f->names_off[i] = (uint32_t)(p - enc);
        p = mp_text(p, PyTuple_GET_ITEM(names, i));
    }
    f->names_off[n] = (uint32_t)(p - enc);
    free(f->names_enc);
    f->names_enc = enc;
    return 0;
}

/* values.capture_args(names, values): arguments by name as text, redacted by
 * name (decided once per names tuple and sensitive-word list), into cv: the
 * texts in the order of names, or the dict from Python. */
static int capture_args(Hooks *h, Func *f, PyObject *names, PyObject *values, CallValues *cv) {
    cv->names = names;
    if (!h->fast || !PyTuple_CheckExact(names) || !PyTuple_CheckExact(values) ||
        PyTuple_GET_SIZE(names) > ARGS_MAX)
        goto python;
    /* the sensitive-word list now (values._sensitive); looked up only when the
     * values module's globals changed since the last look */
    PyObject *key = h->sens_key;
#if PY_VERSION_HEX < 0x030C0000
    if (((PyDictObject *)h->values_dict)->ma_version_tag != h->values_ver || !key)
#endif
    {
        key = PyDict_GetItemWithError(h->values_dict, s__sensitive);
        if (!key) {
            if (PyErr_Occurred()) return -1;
            goto python;
        }
        Py_XSETREF(h->sens_key, Py_NewRef(key));
#if PY_VERSION_HEX < 0x030C0000
        h->values_ver = ((PyDictObject *)h->values_dict)->ma_version_tag;
#endif
    }
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (f->names != names || f->mask_key != key) {
        Py_INCREF(key);
        uint64_t mask = 0;
        int recv = 0;
        if (n > 0) {
            PyObject *first = PyTuple_GET_ITEM(names, 0);
            recv = PyUnicode_Check(first) && (PyUnicode_CompareWithASCIIString(first, "self") == 0 ||
                                              PyUnicode_CompareWithASCIIString(first, "cls") == 0);
        }
        for (Py_ssize_t i = recv ? 1 : 0; i < n; i++) {
            PyObject *r = PyObject_CallOneArg(h->redact, PyTuple_GET_ITEM(names, i));
            int hit = r ? PyObject_IsTrue(r) : -1;
            Py_XDECREF(r);
            if (hit < 0) { Py_DECREF(key); return -1; }
            if (hit) mask |= 1ULL << i;
        }
        if (names_encode(f, names) < 0) { Py_DECREF(key); return -1; }
        Py_XSETREF(f->names, Py_NewRef(names));
        Py_XSETREF(f->mask_key, key);
        f->mask = mask;
        f->recv = recv;
    }
    uint64_t mask = f->mask;
    int recv = f->recv;
    if (PyTuple_GET_SIZE(values) < n) n = PyTuple_GET_SIZE(values);
    cv->n = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *text = (i == 0 && recv) ? receiver_text(PyTuple_GET_ITEM(values, 0))
                         : (mask >> i) & 1 ? Py_NewRef(h->redacted)
                                           : value_text(h, PyTuple_GET_ITEM(values, i));
        if (!text) { call_values_clear(cv); return -1; }
        cv->texts[cv->n++] = text;
    }
    return 0;
python:
    cv->dict = PyObject_CallFunctionObjArgs(h->capture_args, names, values, NULL);
    return cv->dict ? 0 : -1;
}

/* --- records with values, written straight into the ring's arena (no tuple is made) --- */

/* ("call", id, ts, thread, cid, parent, name, args, file, line, task); 0 if refused.
 * Every str's UTF-8 is read once; the function's name and file and the argument
 * names were encoded once, on the function. */
static int put_call(Hooks *h, Func *f, int64_t rid, int64_t ts, PyObject *cid, int64_t parent,
                    CallValues *cv) {
    const char *tu[ARGS_MAX], *task_u = NULL;
    Py_ssize_t tn[ARGS_MAX], task_n = 0, args = 1;
    int names_kept = cv->n >= 0 && f->names == cv->names && f->names_enc;
    if (cv->dict) {
        args = enc_size(cv->dict, 0);
        if (args < 0) { /* not str -> str: recorded without them */
            PyErr_SetString(PyExc_TypeError, "capture_args gave more than str -> str");
            hook_error(h);
            Py_CLEAR(cv->dict);
            args = 1;
        }
    } else if (cv->n >= 0) {
        args = MP_HDR_MAX;
        for (Py_ssize_t i = 0; i < cv->n; i++) {
            if (utf8_of(cv->texts[i], &tu[i], &tn[i]) < 0) goto no_utf8;
            Py_ssize_t name = names_kept ? (Py_ssize_t)(f->names_off[i + 1] - f->names_off[i])
                                         : text_size(PyTuple_GET_ITEM(cv->names, i));
            if (name < 0) goto no_utf8;
            args += name + MP_HDR_MAX + tn[i];
        }
    }
    if (cv->task && utf8_of(cv->task, &task_u, &task_n) < 0) goto no_utf8;
    Py_ssize_t c = cid_size(cid);
    if (c < 0 || !f->enc) goto no_utf8;
    Py_ssize_t need = 1 + 5 + 5 * MP_INT_MAX + c + f->name_enc + args + f->file_enc +
                      (cv->task ? MP_HDR_MAX + task_n : 1);
    char *at;
    Rec *r = ring_reserve(h->ring, need, &at);
    if (!r) return 0;
    char *p = mp_array_hdr(at, 11);
    p = mp_str(p, "call", 4);
    p = mp_int(p, rid);
    p = mp_int(p, ts);
    p = mp_uint(p, PyThread_get_thread_ident());
    p = mp_cid(p, cid);
    p = mp_int(p, parent);
    memcpy(p, f->enc, f->name_enc);
    p += f->name_enc;
    if (cv->dict) {
        p = enc_write(cv->dict, p, at + need, 0);
        if (!p) { ring_unreserve(h->ring, r, need); return 0; }
    } else if (cv->n >= 0) {
        p = mp_map_hdr(p, cv->n);
        for (Py_ssize_t i = 0; i < cv->n; i++) {
            if (names_kept) {
                uint32_t len = f->names_off[i + 1] - f->names_off[i];
                memcpy(p, f->names_enc + f->names_off[i], len);
                p += len;
            } else {
                p = mp_text(p, PyTuple_GET_ITEM(cv->names, i));
            }
            p = mp_str(p, tu[i], tn[i]);
        }
    } else {
        p = mp_nil(p);
    }
    memcpy(p, f->enc + f->name_enc, f->file_enc);
    p += f->file_enc;
    p = mp_int(p, f->line);
    p = cv->task ? mp_str(p, task_u, task_n) : mp_nil(p);
    ring_commit(h->ring, r, need, p - at);
    return 1;
no_utf8:
    PyErr_SetString(PyExc_ValueError, "a recorded str has no UTF-8 form");
    return -1;
}

/* ("return", id, ts, thread, cid, parent, call_id, name, dur, result); 0 if refused. */
static int put_return(Hooks *h, Func *f, int64_t rid, int64_t ts, PyObject *cid, int64_t parent,
                      Node *node, PyObject *result) {
    const char *u;
    Py_ssize_t n, c = cid_size(cid);
    if (c < 0 || !f->enc || utf8_of(result, &u, &n) < 0) {
        PyErr_SetString(PyExc_ValueError, "a recorded str has no UTF-8 form");
        return -1;
    }
    Py_ssize_t need = 1 + 7 + 6 * MP_INT_MAX + c + f->name_enc + MP_HDR_MAX + n;
    char *at;
    Rec *r = ring_reserve(h->ring, need, &at);
    if (!r) return 0;
    char *p = mp_array_hdr(at, 10);
    p = mp_str(p, "return", 6);
    p = mp_int(p, rid);
    p = mp_int(p, ts);
    p = mp_uint(p, PyThread_get_thread_ident());
    p = mp_cid(p, cid);
    p = mp_int(p, parent);
    p = mp_int(p, node->call_id);
    memcpy(p, f->enc, f->name_enc);
    p += f->name_enc;
    p = mp_int(p, ts - node->t0);
    p = mp_str(p, u, n);
    ring_commit(h->ring, r, need, p - at);
    return 1;
}

/* Record the entry and push a Node; errors are counted, never raised. */
/* _pyhooks.task_name without its Python frame: the running asyncio task's name, read as
 * asyncio.current_task() does (asyncio.tasks._current_tasks by the running loop), once
 * asyncio.tasks is imported; None outside a task or when it cannot be read. */
static PyObject *tasks_current, *tasks_running_loop; /* asyncio.tasks's, once seen */
static PyObject *s_get_name;

static PyObject *running_task_name(Hooks *h) {
    if (!tasks_current) {
        PyObject *name = PyUnicode_FromString("asyncio.tasks");
        PyObject *tasks = name ? PyImport_GetModule(name) : NULL;
        Py_XDECREF(name);
        if (!tasks) {
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE; /* asyncio not imported: no task */
        }
        PyObject *current = PyObject_GetAttrString(tasks, "_current_tasks");
        PyObject *events = current ? PyObject_GetAttrString(tasks, "events") : NULL;
        PyObject *loop_of = events ? PyObject_GetAttrString(events, "_get_running_loop") : NULL;
        Py_DECREF(tasks);
        Py_XDECREF(events);
        if (!loop_of || !PyDict_CheckExact(current)) { /* not the layout known here: Python's */
            Py_XDECREF(current);
            Py_XDECREF(loop_of);
            PyErr_Clear();
            return PyObject_CallNoArgs(h->task_name);
        }
        tasks_current = current;
        tasks_running_loop = loop_of;
    }
    PyObject *loop = PyObject_CallNoArgs(tasks_running_loop);
    PyObject *task = loop && loop != Py_None ? PyDict_GetItemWithError(tasks_current, loop) : NULL;
    Py_XDECREF(loop);
    if (!task) {
        PyErr_Clear(); /* as task_name: an error reading it is no task */
        Py_RETURN_NONE;
    }
    Py_INCREF(task);
    PyObject *out = PyObject_CallMethodNoArgs(task, s_get_name);
    Py_DECREF(task);
    if (!out) PyErr_Clear(); /* as task_name: a broken get_name gives no name */
    return out ? out : Py_NewRef(Py_None);
}

static void enter(Hooks *h, Py_ssize_t fid, PyObject *names, PyObject *values, int gen) {
    if (fid <= 0 || fid >= h->nfuncs || !h->funcs[fid].name || !h->ring) {
        PyErr_Format(PyExc_ValueError, "unknown function id %zd (or hooks not bound)", fid);
        hook_error(h);
        return;
    }
    Func *f = &h->funcs[fid];
    Cell *cell = own_cell(&h->cc);
    if (!cell) { hook_error(h); return; }
    PyObject *cid = cell->cid; /* borrowed: the cell keeps it while we run no Python */
    Node *parent = cell->top;
    if (parent && parent->epoch != h->epoch) parent = NULL;
    int sampled = parent ? parent->sampled : -1;
    int64_t scope = parent ? parent->scope_id : 0;
    uint64_t chain = parent ? parent->chain : 0;
    Node *n = node_new();
    if (!n) { hook_error(h); return; }
    n->fid = (int32_t)fid;
    n->epoch = h->epoch;
    n->call_id = 0;
    n->t0 = 0;
    n->recorded = 0;
    if (gen) {
        PyObject *frame = (PyObject *)PyEval_GetFrame();
        Py_XINCREF(frame);
        n->frame = frame;
    }
    if (f->level == 0) {
        n->scope_id = scope;
        n->sampled = (int8_t)sampled;
        n->chain = chain;
    } else {
        if (sampled < 0) { /* a root call: decides sampling, starts a chain if none is set */
            sampled = f->sampling >= 1.0 || (f->sampling > 0.0 && rng_next(h) < f->sampling);
            if (sampled && !cid) chain = ++chain_count;
        }
        n->chain = chain;
        if (sampled) {
            CallValues cv; /* not zeroed whole: texts[] is read up to n only */
            cv.names = cv.dict = cv.task = NULL;
            cv.n = -1;
            Py_XINCREF(cid); /* the values' capture may run Python: keep it */
            if (names && f->level >= 2 && capture_args(h, f, names, values, &cv) < 0)
                hook_error(h);
            if (f->coro && h->task_name) {
                PyObject *task = running_task_name(h);
                if (!task) hook_error(h);
                else if (task != Py_None && PyUnicode_CheckExact(task)) cv.task = task;
                else Py_DECREF(task);
            }
            int64_t rid = ++h->ids->value;
            int64_t ts = hlc_now(h->clock);
            PyObject *rcid = cid ? cid : chain ? CHAIN_CID(chain) : NULL;
            if (cv.n >= 0 || cv.dict || cv.task) { /* with values: encoded now */
                if (put_call(h, f, rid, ts, rcid, scope, &cv) < 0) hook_error(h);
                Py_XDECREF(cid);
            } else { /* compact: the hot path at level boundaries */
                Rec *r = ring_slot(h->ring, 0);
                if (r) {
                    r->kind = K_CALL;
                    r->file = Py_XNewRef(f->file);
                    r->call_id = f->line;
                    r->id = rid;
                    r->ts = ts;
                    r->thread = PyThread_get_thread_ident();
                    r->cid = rcid; /* takes the reference */
                    r->parent = scope;
                    Py_INCREF(f->name);
                    r->name = f->name;
                } else {
                    Py_XDECREF(cid);
                }
            }
            call_values_clear(&cv);
            h->calls++;
            h->events++;
            n->call_id = rid;
            n->t0 = ts;
            n->scope_id = rid;
            n->sampled = 1;
            n->recorded = 1;
        } else {
            h->sampled_out++;
            n->scope_id = 0;
            n->sampled = 0;
        }
    }
    Py_XINCREF(parent);
    n->parent = parent;
    Node *old = cell->top;
    cell->top = n;
    Py_XDECREF(old);
}

static int is_generator_end(PyObject *et) {
    return PyType_Check(et) &&
           (PyType_IsSubtype((PyTypeObject *)et, (PyTypeObject *)PyExc_GeneratorExit) ||
            PyType_IsSubtype((PyTypeObject *)et, (PyTypeObject *)PyExc_StopIteration) ||
            PyType_IsSubtype((PyTypeObject *)et, (PyTypeObject *)PyExc_StopAsyncIteration));
}

static void leave(Hooks *h, int32_t fid, PyObject *et, PyObject *ev, PyObject *tb) {
    if (fid <= 0 || fid >= h->nfuncs || !h->ring) return;
    Func *f = &h->funcs[fid];
    Node *node = NULL; /* owned */
    if (f->gen && PyDict_GET_SIZE(h->suspended)) {
        PyObject *frame = (PyObject *)PyEval_GetFrame();
        if (frame) {
            node = (Node *)PyDict_GetItemWithError(h->suspended, frame);
            if (node) {
                Py_INCREF(node);
                if (PyDict_DelItem(h->suspended, frame) < 0) hook_error(h);
            } else if (PyErr_Occurred()) {
                hook_error(h);
            }
        }
    }
    Cell *cell = NULL;
    if (!node) {
        cell = own_cell(&h->cc);
        if (!cell) { hook_error(h); return; }
        Node *top = cell->top;
        if (!top || top->fid != fid) { h->stack_mismatches++; return; }
        node = top;
        cell->top = top->parent;
        Py_XINCREF(cell->top);
    }
    if (node->recorded && node->epoch == h->epoch) {
        PyObject *cid = cell ? Py_XNewRef(cell->cid) : current_cid(h);
        if (!cid && PyErr_Occurred()) hook_error(h);
        if (!cid && node->chain) cid = CHAIN_CID(node->chain);
        int64_t ts = hlc_now(h->clock);
        int error = et && et != Py_None && !(f->gen && is_generator_end(et));
        if (error) {
            PyObject *type = PyObject_CallOneArg(h->exc_type_name, et);
            PyObject *message = type ? PyObject_CallFunctionObjArgs(
                                           h->exc_message, ev ? ev : Py_None, h->values, NULL)
                                     : NULL;
            /* (line, traceback) of where it was raised; the error is recorded without */
            PyObject *where = message ? PyObject_CallOneArg(h->exc_where, tb ? tb : Py_None) : NULL;
            if (where && (!PyTuple_CheckExact(where) || PyTuple_GET_SIZE(where) != 2)) Py_CLEAR(where);
            if (!where) PyErr_Clear();
            PyObject *cid_text = IS_CHAIN_CID(cid) ? chain_text(CHAIN_OF(cid)) : Py_XNewRef(cid);
            int64_t rid = ++h->ids->value;
            PyObject *t = message && (cid_text || !cid)
                              ? Py_BuildValue("(OLLkOLLOLOOOO)", s_exception, rid, ts,
                                              PyThread_get_thread_ident(), OR_NONE(cid_text),
                                              outer_scope(h, node), node->call_id, f->name,
                                              ts - node->t0, type, message,
                                              where ? PyTuple_GET_ITEM(where, 0) : s_zero,
                                              where ? PyTuple_GET_ITEM(where, 1) : Py_None)
                              : NULL;
            if (!t) hook_error(h);
            else if (ring_put(h->ring, t)) h->events++;
            Py_XDECREF(t);
            Py_XDECREF(cid_text);
            Py_XDECREF(type);
            Py_XDECREF(message);
            Py_XDECREF(where);
            cid_release(cid);
        } else if (f->level >= 2) {
            int64_t rid = ++h->ids->value;
            int put = put_return(h, f, rid, ts, cid, outer_scope(h, node), node,
                                 node->result ? node->result : s_None_text);
            if (put < 0) hook_error(h);
            else if (put) h->events++;
            cid_release(cid);
        } else {
            int64_t rid = ++h->ids->value;
            Rec *r = ring_slot(h->ring, 0);
            if (r) {
                r->kind = K_RETURN;
                r->id = rid;
                r->ts = ts;
                r->thread = PyThread_get_thread_ident();
                r->cid = cid; /* takes the reference */
                r->parent = outer_scope(h, node);
                r->call_id = node->call_id;
                Py_INCREF(f->name);
                r->name = f->name;
                r->dur = ts - node->t0;
                h->events++;
            } else {
                cid_release(cid);
            }
        }
    }
    Py_DECREF(node);
}

/* --- Exit: __enter__ and __exit__ are the object itself (see SelfDescr) --- */

static PyObject *Exit_vectorcall(Exit *self, PyObject *const *args, size_t nargsf, PyObject *kw) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n == 3 && !self->hooks) Py_RETURN_FALSE;
    if (n == 3) {
        if (PyErr_Occurred()) { /* nothing should be pending; keep it safe */
            PyObject *et, *ev, *tb;
            PyErr_Fetch(&et, &ev, &tb);
            leave(self->hooks, self->fid, args[0], args[1], args[2]);
            if (PyErr_Occurred()) { PyErr_Clear(); self->hooks->hook_errors++; }
            PyErr_Restore(et, ev, tb);
        } else {
            leave(self->hooks, self->fid, args[0], args[1], args[2]);
            if (PyErr_Occurred()) { PyErr_Clear(); self->hooks->hook_errors++; }
        }
        Py_RETURN_FALSE;
    }
    Py_RETURN_NONE; /* __enter__: the entry was recorded by call() */
}

static int Exit_traverse(Exit *self, visitproc visit, void *arg) {
    Py_VISIT(self->hooks);
    return 0;
}
static int Exit_clear(Exit *self) {
    Py_CLEAR(self->hooks);
    return 0;
}
static void Exit_dealloc(Exit *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->hooks);
    PyObject_GC_Del(self);
}

static PyTypeObject ExitType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.Exit",
    .tp_basicsize = sizeof(Exit),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Exit, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)Exit_traverse,
    .tp_clear = (inquiry)Exit_clear,
    .tp_dealloc = (destructor)Exit_dealloc,
    .tp_doc = "One function's exit context manager; __enter__/__exit__ are itself.",
};

typedef struct {
    PyObject_HEAD
} SelfDescr;

static PyObject *SelfDescr_get(PyObject *d, PyObject *obj, PyObject *type) {
    if (!obj) { Py_INCREF(d); return d; }
    Py_INCREF(obj);
    return obj;
}
static PyTypeObject SelfDescrType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.SelfDescr",
    .tp_basicsize = sizeof(SelfDescr),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_descr_get = SelfDescr_get,
};

/* --- Hooks methods --- */

static inline Py_ssize_t fid_of(PyObject *o) {
#if PY_VERSION_HEX < 0x030C0000
    if (PyLong_CheckExact(o) && Py_SIZE(o) == 1) return (Py_ssize_t)((PyLongObject *)o)->ob_digit[0];
#endif
    Py_ssize_t v = PyLong_AsSsize_t(o);
    if (v == -1 && PyErr_Occurred()) PyErr_Clear();
    return v;
}

static PyObject *null_exit; /* returned when the fid is unknown: the `with` still works */

static inline PyObject *exit_of(Hooks *h, Py_ssize_t fid) {
    PyObject *e = (fid > 0 && fid < h->nfuncs && h->funcs[fid].exit) ? h->funcs[fid].exit
                                                                      : null_exit;
    Py_INCREF(e);
    return e;
}

static PyObject *Hooks_call(Hooks *self, PyObject *fid_o) {
    Py_ssize_t fid = fid_of(fid_o);
    enter(self, fid, NULL, NULL, 0);
    return exit_of(self, fid);
}

static PyObject *Hooks_gen_call(Hooks *self, PyObject *fid_o) {
    Py_ssize_t fid = fid_of(fid_o);
    enter(self, fid, NULL, NULL, 1);
    return exit_of(self, fid);
}

static PyObject *Hooks_call_args(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 3) { self->hook_errors++; Py_INCREF(null_exit); return null_exit; }
    Py_ssize_t fid = fid_of(args[0]);
    enter(self, fid, args[1], args[2], 0);
    return exit_of(self, fid);
}

static PyObject *Hooks_gen_call_args(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 3) { self->hook_errors++; Py_INCREF(null_exit); return null_exit; }
    Py_ssize_t fid = fid_of(args[0]);
    enter(self, fid, args[1], args[2], 1);
    return exit_of(self, fid);
}

static PyObject *Hooks_ret(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) { self->hook_errors++; return Py_NewRef(n ? args[n - 1] : Py_None); }
    Py_ssize_t fid = fid_of(args[0]);
    Node *top;
    if (peek_top(&self->cc, &top) < 0) { hook_error(self); return Py_NewRef(args[1]); }
    if (top && top->fid == fid && top->recorded && fid < self->nfuncs &&
        self->funcs[fid].level >= 2) {
        PyObject *text = value_text(self, args[1]);
        if (text) Py_XSETREF(top->result, text);
        else hook_error(self);
    }
    return Py_NewRef(args[1]);
}

/* ObjectStates.record(obj) of this binding: (obj, seq, key, delta), or no_state when it
 * failed (a hook error) or skipped; a new reference. */
static PyObject *object_state(Hooks *h, PyObject *obj) {
    if (!h->objects) { /* first attr of this binding: imports elixirscope.state */
        PyObject *mod = PyImport_ImportModule("elixirscope.capture.objects");
        PyObject *cls = mod ? PyObject_GetAttrString(mod, "ObjectStates") : NULL;
        Py_XDECREF(mod);
        h->objects = cls ? PyObject_CallNoArgs(cls) : NULL;
        Py_XDECREF(cls);
    }
    PyObject *state = h->objects ? PyObject_CallMethodOneArg(h->objects, s_record, obj) : NULL;
    if (state && PyTuple_CheckExact(state) && PyTuple_GET_SIZE(state) == 4) return state;
    if (!state) hook_error(h);
    Py_XDECREF(state);
    return Py_NewRef(no_state);
}

/* yield / resume / attr records: prebuilt tuples (not the hot path). */
/* ``line``: a suspension's own line (the rewriter's constant); ``awaiting``: a yield's, at an
 * await (not a yield); a resume's, by an exception thrown in (its type recorded); both
 * unused for an attr. */
static void record_step(Hooks *h, PyObject *tag, Node *node, PyObject *value, PyObject *attr_name,
                        long line, int awaiting) {
    if (!node->recorded || node->epoch != h->epoch) return;
    Func *f = &h->funcs[node->fid];
    PyObject *text, *state = NULL;
    if (attr_name) {
        text = PyObject_CallFunctionObjArgs(h->safe_attr, value, attr_name, NULL);
        if (text) state = object_state(h, value);
    } else if (f->level >= 2) {
        text = value_text(h, value);
    } else {
        text = Py_NewRef(Py_None);
    }
    if (!text) { hook_error(h); return; }
    PyObject *cid = event_cid(h, node);
    int64_t rid = ++h->ids->value;
    PyObject *t;
    if (attr_name)
        t = Py_BuildValue("(OLLkOLLOOOOOOO)", tag, rid, hlc_now(h->clock),
                          PyThread_get_thread_ident(), OR_NONE(cid), outer_scope(h, node),
                          node->call_id, f->name, attr_name, text, PyTuple_GET_ITEM(state, 0),
                          PyTuple_GET_ITEM(state, 1), PyTuple_GET_ITEM(state, 2),
                          PyTuple_GET_ITEM(state, 3));
    else if (tag == s_yield)
        t = Py_BuildValue("(OLLkOLLOOlO)", tag, rid, hlc_now(h->clock), PyThread_get_thread_ident(),
                          OR_NONE(cid), outer_scope(h, node), node->call_id, f->name, text,
                          line, awaiting ? Py_True : Py_False);
    else if (awaiting) { /* a resume by an exception thrown in: its type */
        PyObject *type = PyObject_CallOneArg(h->exc_type_name, (PyObject *)Py_TYPE(value));
        t = type ? Py_BuildValue("(OLLkOLLOOO)", tag, rid, hlc_now(h->clock),
                                 PyThread_get_thread_ident(), OR_NONE(cid), outer_scope(h, node),
                                 node->call_id, f->name, text, type)
                 : NULL;
        Py_XDECREF(type);
    } else
        t = Py_BuildValue("(OLLkOLLOO)", tag, rid, hlc_now(h->clock), PyThread_get_thread_ident(),
                          OR_NONE(cid), outer_scope(h, node), node->call_id, f->name, text);
    Py_XDECREF(cid);
    Py_DECREF(text);
    Py_XDECREF(state);
    if (!t) { hook_error(h); return; }
    if (ring_put(h->ring, t)) h->events++;
    Py_DECREF(t);
}

static void suspend(Hooks *h, Py_ssize_t fid, PyObject *value, int pop, long line) {
    if (fid <= 0 || fid >= h->nfuncs || !h->ring) { h->stack_mismatches++; return; }
    PyObject *frame = (PyObject *)PyEval_GetFrame();
    Cell *cell = own_cell(&h->cc);
    if (!cell) { hook_error(h); return; }
    Node *top = cell->top, *node;
    if (top && top->fid == fid && (!pop || top->frame == frame)) {
        node = top;
        Py_INCREF(node);
        if (pop) {
            if (!frame || PyDict_SetItem(h->suspended, frame, (PyObject *)top) < 0) {
                Py_DECREF(node);
                if (PyErr_Occurred()) hook_error(h);
                return;
            }
            cell->top = top->parent;
            Py_XINCREF(cell->top);
            Py_DECREF(top); /* the cell's reference; the dict holds one */
        }
    } else {
        node = frame ? (Node *)PyDict_GetItemWithError(h->suspended, frame) : NULL;
        if (!node) {
            if (PyErr_Occurred()) hook_error(h);
            else h->stack_mismatches++;
            return;
        }
        Py_INCREF(node);
    }
    if (!pop) node->awaiting = 1; /* resumed, or caught() if it raises, clears it */
    node->step_line = (int32_t)line;
    record_step(h, s_yield, node, value, NULL, line, !pop);  /* awaiting does not pop */
    Py_DECREF(node);
}

/* yielding/awaiting(FID, LINE, value): LINE is the yield's or await's line, a constant. */
static long line_of(PyObject *line) {
    long v = PyLong_Check(line) ? PyLong_AsLong(line) : 0;
    if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    return v;
}

static PyObject *Hooks_yielding(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 3) { self->hook_errors++; return Py_NewRef(n ? args[n - 1] : Py_None); }
    suspend(self, fid_of(args[0]), args[2], 1, line_of(args[1]));
    return Py_NewRef(args[2]);
}

static PyObject *Hooks_awaiting(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 3) { self->hook_errors++; return Py_NewRef(n ? args[n - 1] : Py_None); }
    suspend(self, fid_of(args[0]), args[2], 0, line_of(args[1]));
    return Py_NewRef(args[2]);
}

static PyObject *resume_at(Hooks *self, PyObject *fid_obj, PyObject *value, int raised);

/* Whether the exception an except clause handles came into ``frame`` at its call's last
 * yield or await: its traceback's entry for the frame is on that line. Else the one thrown
 * in there was handled without an except (a suppressing ``with``) and this one was raised
 * since. Unknown lines count as a match. */
static int came_in_at(Node *node, PyObject *exc, PyObject *frame) {
    if (!exc || !frame || node->step_line <= 0) return 1;
    PyObject *tb = PyException_GetTraceback(exc); /* new reference, or NULL */
    if (!tb) return 1;
    int same = 1;
    if (PyTraceBack_Check(tb) && (PyObject *)((PyTracebackObject *)tb)->tb_frame == frame) {
        PyObject *line = PyObject_GetAttrString(tb, "tb_lineno"); /* computed when first read */
        long v = line && PyLong_Check(line) ? PyLong_AsLong(line) : -1;
        Py_XDECREF(line);
        if (PyErr_Occurred()) PyErr_Clear();
        if (v > 0) same = v == node->step_line;
    }
    Py_DECREF(tb);
    return same;
}

/* caught(fid): an except clause of a generator or coroutine began. Its frame still
 * suspended, the exception was thrown in at its yield or await (which never reached
 * resumed): that is its resume, the exception its value. */
static PyObject *Hooks_caught(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 1) { self->hook_errors++; Py_RETURN_NONE; }
    if (!self->ring) Py_RETURN_NONE;
    Node *node = NULL; /* borrowed */
    int at_yield = 0;
    PyObject *frame = (PyObject *)PyEval_GetFrame(); /* borrowed */
    if (frame && PyDict_GET_SIZE(self->suspended)) { /* a generator, at a yield */
        node = (Node *)PyDict_GetItemWithError(self->suspended, frame);
        if (!node && PyErr_Occurred()) { hook_error(self); Py_RETURN_NONE; }
        at_yield = node != NULL;
    }
    if (!node) { /* a coroutine stays on its task's stack at an await: flagged there */
        Cell *cell = own_cell(&self->cc);
        if (!cell) { hook_error(self); Py_RETURN_NONE; }
        Node *top = cell->top;
        if (top && top->awaiting && top->fid == fid_of(args[0])) node = top;
    }
    if (!node) Py_RETURN_NONE;
    PyObject *exc = PyErr_GetHandledException(); /* new reference, or NULL */
    int came_in = came_in_at(node, exc, frame);
    PyObject *done = NULL;
    if (came_in)
        done = resume_at(self, args[0], exc ? exc : Py_None, exc != NULL);
    else if (at_yield) /* resumed by one a `with` suppressed: back on the stack, as it is */
        done = resume_at(self, args[0], Py_None, 0);
    else /* its await's exception was handled by a `with`: this one is not it */
        node->awaiting = 0;
    Py_XDECREF(done);
    Py_XDECREF(exc);
    if (PyErr_Occurred()) hook_error(self);
    Py_RETURN_NONE;
}

static PyObject *Hooks_resumed(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) { self->hook_errors++; return Py_NewRef(n ? args[n - 1] : Py_None); }
    return resume_at(self, args[0], args[1], 0);
}

/* thrown(fid, exc): an implicit await (async_proxies) ended by ``exc`` instead of a value:
 * the resume, recorded with its type as caught() records an explicit await's. */
static PyObject *Hooks_thrown(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2 || !PyExceptionInstance_Check(args[1])) {
        self->hook_errors++;
        return Py_NewRef(n ? args[n - 1] : Py_None);
    }
    return resume_at(self, args[0], args[1], 1);
}

/* The resume of FID's call with ``value`` (``raised``: an exception thrown in at its
 * yield or await, which the call caught: recorded with its type). Returns ``value``. */
static PyObject *resume_at(Hooks *self, PyObject *fid_obj, PyObject *value, int raised) {
    PyObject *args[2] = {fid_obj, value};
    Py_ssize_t fid = fid_of(args[0]);
    if (fid <= 0 || fid >= self->nfuncs || !self->ring) {
        self->stack_mismatches++;
        return Py_NewRef(args[1]);
    }
    PyObject *frame = (PyObject *)PyEval_GetFrame();
    Node *node = NULL;
    if (frame && PyDict_GET_SIZE(self->suspended)) {
        node = (Node *)PyDict_GetItemWithError(self->suspended, frame);
        if (node) {
            Py_INCREF(node);
            PyDict_DelItem(self->suspended, frame);
        }
        if (PyErr_Occurred()) hook_error(self);
    }
    Cell *cell = own_cell(&self->cc);
    if (!cell) { Py_XDECREF(node); hook_error(self); return Py_NewRef(args[1]); }
    if (node) { /* push it back under whoever resumed it */
        Node *moved = node_new();
        if (!moved) { Py_DECREF(node); hook_error(self); return Py_NewRef(args[1]); }
        Node *top = cell->top;
        if (top && top->epoch != self->epoch) top = NULL;
        moved->call_id = node->call_id;
        moved->t0 = node->t0;
        moved->scope_id = node->scope_id;
        moved->fid = node->fid;
        moved->sampled = node->sampled;
        moved->recorded = node->recorded;
        moved->epoch = node->epoch;
        moved->result = Py_XNewRef(node->result);
        moved->frame = Py_XNewRef(node->frame);
        moved->chain = node->chain;
        moved->parent = top;
        Py_XINCREF(top);
        Node *old = cell->top;
        cell->top = moved;
        Py_XDECREF(old);
        Py_DECREF(node);
        node = moved;
    } else {
        node = cell->top;
        if (!node || node->fid != fid) {
            self->stack_mismatches++;
            return Py_NewRef(args[1]);
        }
    }
    Py_INCREF(node);
    node->awaiting = 0;
    record_step(self, s_resume, node, args[1], NULL, 0, raised);
    Py_DECREF(node);
    return Py_NewRef(args[1]);
}

static PyObject *Hooks_attr(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 3) { self->hook_errors++; Py_RETURN_NONE; }
    Py_ssize_t fid = fid_of(args[0]);
    Node *top;
    if (peek_top(&self->cc, &top) < 0) { hook_error(self); Py_RETURN_NONE; }
    if (top && top->fid == fid && top->recorded && top->epoch == self->epoch &&
        fid < self->nfuncs && self->funcs[fid].level >= 3) {
        Py_INCREF(top);
        record_step(self, s_attr, top, args[1], args[2], 0, 0);
        Py_DECREF(top);
    }
    Py_RETURN_NONE;
}

static int grow(Hooks *h, Py_ssize_t fid) {
    if (fid < h->nfuncs) return 0;
    Py_ssize_t n = h->nfuncs ? h->nfuncs : 64;
    while (n <= fid) n *= 2;
    Func *f = PyMem_Realloc(h->funcs, n * sizeof(Func));
    if (!f) { PyErr_NoMemory(); return -1; }
    memset(f + h->nfuncs, 0, (n - h->nfuncs) * sizeof(Func));
    h->funcs = f;
    h->nfuncs = n;
    return 0;
}

static PyObject *Hooks_update_function(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "update_function(fid, info)");
        return NULL;
    }
    Py_ssize_t fid = PyLong_AsSsize_t(args[0]);
    if (fid <= 0) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "bad fid %zd", fid);
        return NULL;
    }
    PyObject *name = PyObject_GetAttrString(args[1], "name");
    PyObject *level = name ? PyObject_GetAttrString(args[1], "level_code") : NULL;
    PyObject *sampling = level ? PyObject_GetAttrString(args[1], "sampling") : NULL;
    PyObject *kind = sampling ? PyObject_GetAttrString(args[1], "kind") : NULL;
    PyObject *file = kind ? PyObject_GetAttrString(args[1], "filename") : NULL;
    PyObject *line = file ? PyObject_GetAttrString(args[1], "lineno") : NULL;
    PyObject *res = NULL;
    if (!line || grow(self, fid) < 0) goto done;
    Func *f = &self->funcs[fid];
    f->level = (int)PyLong_AsLong(level);
    f->sampling = PyFloat_AsDouble(sampling);
    if (PyErr_Occurred()) goto done;
    f->gen = PyUnicode_CompareWithASCIIString(kind, "generator") == 0 ||
             PyUnicode_CompareWithASCIIString(kind, "async_generator") == 0;
    f->coro = PyUnicode_CompareWithASCIIString(kind, "coroutine") == 0 ||
              PyUnicode_CompareWithASCIIString(kind, "async_generator") == 0;
    f->line = PyLong_AsLongLong(line);
    if (PyErr_Occurred()) goto done;
    Py_XSETREF(f->file, PyUnicode_Check(file) && PyUnicode_GET_LENGTH(file) ? Py_NewRef(file) : NULL);
    Py_INCREF(name);
    Py_XSETREF(f->name, name);
    if (func_encode(f) < 0) goto done;
    if (!f->exit) {
        Exit *e = PyObject_GC_New(Exit, &ExitType);
        if (!e) goto done;
        e->vectorcall = (vectorcallfunc)Exit_vectorcall;
        e->hooks = self;
        Py_INCREF(self);
        e->fid = (int32_t)fid;
        PyObject_GC_Track(e);
        f->exit = (PyObject *)e;
    }
    res = Py_NewRef(Py_None);
done:
    Py_XDECREF(name);
    Py_XDECREF(level);
    Py_XDECREF(sampling);
    Py_XDECREF(kind);
    Py_XDECREF(file);
    Py_XDECREF(line);
    return res;
}

static PyObject *Hooks_bind(Hooks *self, PyObject *rec) {
    PyObject *ring = PyObject_GetAttrString(rec, "ring");
    PyObject *clock = ring ? PyObject_GetAttrString(rec, "clock") : NULL;
    PyObject *ids = clock ? PyObject_GetAttrString(rec, "_ids") : NULL;
    if (!ids) goto fail;
    if (!PyObject_TypeCheck(ring, &RingType) || !PyObject_TypeCheck(clock, &HLCType) ||
        !PyObject_TypeCheck(ids, &IdsType)) {
        PyErr_Format(PyExc_TypeError,
                     "Expected a Recorder with the C ring, clock and ids (accelerated=True),"
                     " got %R - at Hooks.bind", rec);
        goto fail;
    }
    if (chain_pid != getpid()) { /* first bind in this process (or a forked child's) */
        PyObject *os = PyImport_ImportModule("os");
        PyObject *rnd = os ? PyObject_CallMethod(os, "urandom", "i", 16) : NULL;
        Py_XDECREF(os);
        if (!rnd) goto fail;
        if (!PyBytes_Check(rnd) || PyBytes_GET_SIZE(rnd) != 16) {
            Py_DECREF(rnd);
            PyErr_SetString(PyExc_RuntimeError,
                            "Expected os.urandom(16) to give 16 bytes - at Hooks.bind");
            goto fail;
        }
        uint64_t prefix;
        memcpy(&prefix, PyBytes_AS_STRING(rnd), 8);
        memcpy(&trace_rng, PyBytes_AS_STRING(rnd) + 8, 8);
        Py_DECREF(rnd);
        hex64(chain_prefix, prefix);
        chain_prefix_bits = prefix;
        chain_mp_n = 0;
        chain_pid = getpid();
    }
    Py_XSETREF(self->ring, (Ring *)ring);
    Py_XSETREF(self->clock, (HLC *)clock);
    Py_XSETREF(self->ids, (Ids *)ids);
    Py_CLEAR(self->objects); /* a new recording (or a forked child) starts with whole states */
    self->epoch++;
    PyDict_Clear(self->suspended);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(ring);
    Py_XDECREF(clock);
    Py_XDECREF(ids);
    return NULL;
}

static PyObject *Hooks_current_call_id(Hooks *self, PyObject *Py_UNUSED(ignored)) {
    Node *top;
    if (peek_top(&self->cc, &top) < 0) return NULL;
    return PyLong_FromLongLong(top && top->epoch == self->epoch ? top->scope_id : 0);
}

/* The context's correlation id, else the chain id of the innermost call of this epoch. */
static PyObject *Hooks_current_correlation_id(Hooks *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *cid = current_cid(self);
    if (cid || PyErr_Occurred()) return cid;
    Node *top;
    if (peek_top(&self->cc, &top) < 0) return NULL;
    if (top && top->epoch == self->epoch && top->chain) return chain_text(top->chain);
    Py_RETURN_NONE;
}

/* emit(tag, *fields): Recorder.emit of the recorder these hooks are bound to, in C (the
 * integrations' events: a request, a query): (tag, id, ts, thread, correlation id,
 * enclosing call, *fields) appended to its ring, as the Python method does; the id. */
/* (tag, id, ts, thread, correlation id, enclosing call) followed by `extra` unset items:
 * an event's envelope, the id drawn now; NULL with the error. */
static PyObject *envelope_tuple(Hooks *self, PyObject *tag, Py_ssize_t extra) {
    PyObject *event = PyTuple_New(extra + 6);
    if (!event) return NULL;
    int64_t id = ++self->ids->value;
    PyObject *parts[5] = {PyLong_FromLongLong(id), PyLong_FromLongLong(hlc_now(self->clock)),
                          PyLong_FromUnsignedLong(PyThread_get_thread_ident()), NULL, NULL};
    if (parts[0] && parts[1] && parts[2]) parts[3] = Hooks_current_correlation_id(self, NULL);
    if (parts[3]) parts[4] = Hooks_current_call_id(self, NULL);
    PyTuple_SET_ITEM(event, 0, Py_NewRef(tag));
    for (int i = 0; i < 5; i++) PyTuple_SET_ITEM(event, i + 1, parts[i]);
    if (!parts[4]) { /* an error (set); the tuple owns what was made */
        for (Py_ssize_t i = 0; i < extra; i++) PyTuple_SET_ITEM(event, i + 6, Py_NewRef(Py_None));
        Py_DECREF(event);
        return NULL;
    }
    return event;
}

/* emit_event's record written straight into the ring's arena, as ring_put would write the
 * tuple (id, time, thread as ints; no tuple, no ints made): the id, or NULL with no error
 * when a field is not one C encodes (the tuple then goes the way of any value). */
static PyObject *emit_direct(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    Py_ssize_t need = MP_HDR_MAX + 3 * MP_INT_MAX;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t size = enc_size(args[i], 1);
        if (size < 0) return NULL;
        need += size;
    }
    int64_t id = ++self->ids->value;
    int64_t ts = hlc_now(self->clock);
    PyObject *cid = Hooks_current_correlation_id(self, NULL);
    PyObject *call = cid ? Hooks_current_call_id(self, NULL) : NULL;
    Py_ssize_t a = cid ? enc_size(cid, 1) : -1, b = call ? enc_size(call, 1) : -1;
    PyObject *out = NULL;
    if (a < 0 || b < 0) { /* an error (set), or never so: said as it is */
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Expected an int call id and a str correlation id");
        goto done;
    }
    need += a + b;
    char *at;
    Rec *rec = ring_reserve(self->ring, need, &at);
    if (rec) {
        char *end = at + need, *p = mp_array_hdr(at, (uint32_t)(n + 5));
        p = enc_write(args[0], p, end, 1);
        if (p) {
            p = mp_int(p, id);
            p = mp_int(p, ts);
            p = mp_uint(p, PyThread_get_thread_ident());
            p = enc_write(cid, p, end, 1);
        }
        if (p) p = enc_write(call, p, end, 1);
        for (Py_ssize_t i = 1; p && i < n; i++) p = enc_write(args[i], p, end, 1);
        if (p) ring_commit(self->ring, rec, need, p - at);
        else ring_unreserve(self->ring, rec, need); /* a value changed under it: counted */
    }
    out = PyLong_FromLongLong(id);
done:
    Py_XDECREF(cid);
    Py_XDECREF(call);
    return out;
}

static PyObject *emit_event(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    PyObject *direct = emit_direct(self, args, n);
    if (direct || PyErr_Occurred()) return direct;
    PyObject *event = envelope_tuple(self, args[0], n - 1);
    if (!event) return NULL;
    for (Py_ssize_t i = 1; i < n; i++) PyTuple_SET_ITEM(event, i + 5, Py_NewRef(args[i]));
    PyObject *out = Py_NewRef(PyTuple_GET_ITEM(event, 1)); /* the id */
    ring_put(self->ring, event);
    Py_DECREF(event);
    return out;
}

static int hooks_bound(Hooks *self, const char *where) {
    if (self->ring && self->clock && self->ids) return 1;
    PyErr_Format(PyExc_RuntimeError, "Expected hooks bound to a recorder - at Hooks.%s", where);
    return 0;
}

/* envelope(tag): Recorder.envelope of the bound recorder, in C (a query whose rows are
 * known later: sqlite3's SELECTs). */
static PyObject *Hooks_envelope(Hooks *self, PyObject *tag) {
    return hooks_bound(self, "envelope") ? envelope_tuple(self, tag, 0) : NULL;
}

static PyObject *Hooks_emit(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n < 1) {
        PyErr_SetString(PyExc_TypeError, "Expected emit(tag, *fields) - at Hooks.emit");
        return NULL;
    }
    return hooks_bound(self, "emit") ? emit_event(self, args, n) : NULL;
}

static PyObject *Hooks_stats(Hooks *self, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("{sOsLsLsLsLsLsnsO}", "accelerated", Py_True, "calls_recorded",
                         self->calls, "events_recorded", self->events, "hook_errors",
                         self->hook_errors, "sampled_out", self->sampled_out, "stack_mismatches",
                         self->stack_mismatches, "suspended_generators",
                         PyDict_GET_SIZE(self->suspended), "last_error",
                         self->last_error ? self->last_error : Py_None);
}

/* Whether `values` is elixirscope.capture.values, whose rules value_text
 * reproduces: a module with redact, REDACTED, DEFAULT_LIMIT and _sensitive. */
static int fast_values(Hooks *self) {
    self->fast = 0;
    if (!PyModule_Check(self->values)) return 0;
    PyObject *name = PyModule_GetNameObject(self->values);
    if (!name) { PyErr_Clear(); return 0; }
    int ours = PyUnicode_CompareWithASCIIString(name, "elixirscope.capture.values") == 0;
    Py_DECREF(name);
    if (!ours) return 0;
    PyObject *d = PyModule_GetDict(self->values);
    PyObject *redact = PyDict_GetItemString(d, "redact");
    PyObject *redacted = PyDict_GetItemString(d, "REDACTED");
    PyObject *limit = PyDict_GetItemString(d, "DEFAULT_LIMIT");
    PyObject *depth = PyDict_GetItemString(d, "MAX_DEPTH");
    PyObject *width = PyDict_GetItemString(d, "MAX_WIDTH");
    PyObject *lookahead = PyDict_GetItemString(d, "_LOOKAHEAD");
    if (!redact || !PyCallable_Check(redact) || !redacted || !PyUnicode_CheckExact(redacted) ||
        !limit || !PyLong_CheckExact(limit) || !depth || !width || !lookahead ||
        !PyDict_GetItemString(d, "_sensitive"))
        return 0;
    Py_ssize_t lim = PyLong_AsSsize_t(limit);
    if (lim < 24 || PyLong_AsLong(depth) != V_MAX_DEPTH || PyLong_AsLong(width) != V_MAX_WIDTH ||
        PyLong_AsLong(lookahead) != R_LOOKAHEAD) {
        PyErr_Clear();
        return 0;
    }
    PyObject *cache = PyDict_GetItemString(d, "_redact_cache");
    if (cache && PyDict_CheckExact(cache)) {
        Py_XSETREF(v_redact_cache, Py_NewRef(cache));
        Py_XSETREF(v_redacted, Py_NewRef(redacted));
    }
    PyObject *words = PyDict_GetItemString(d, "_word_cache");
    if (words && PyDict_CheckExact(words)) Py_XSETREF(v_word_cache, Py_NewRef(words));
    PyObject *constant = PyDict_GetItemString(d, "_constant_texts");
    if (constant && PyDict_CheckExact(constant)) Py_XSETREF(v_constant_texts, Py_NewRef(constant));
    PyObject *kinds = PyDict_GetItemString(d, "_object_kinds");
    PyObject *orm = PyDict_GetItemString(d, "_orm_texts");
    if (kinds && PyDict_CheckExact(kinds) && orm && PyDict_CheckExact(orm)) {
        Py_XSETREF(v_object_kinds, Py_NewRef(kinds));
        Py_XSETREF(v_orm_texts, Py_NewRef(orm));
    }
    self->limit = lim;
    self->values_dict = Py_NewRef(d);
    self->redact = Py_NewRef(redact);
    self->redacted = Py_NewRef(redacted);
    self->fast = 1;
    return 0;
}

static int Hooks_init(Hooks *self, PyObject *args, PyObject *kw) {
    PyObject *functions, *values;
    if (!PyArg_ParseTuple(args, "OO", &functions, &values)) return -1;
    PyObject *ctxmod = PyImport_ImportModule("elixirscope.capture.context");
    PyObject *pyhooks = ctxmod ? PyImport_ImportModule("elixirscope.capture._pyhooks") : NULL;
    if (!pyhooks) { Py_XDECREF(ctxmod); return -1; }
    self->cc.corr_var = PyObject_GetAttrString(ctxmod, "_correlation");
    self->exc_type_name = PyObject_GetAttrString(pyhooks, "exc_type_name");
    self->exc_where = self->exc_type_name ? PyObject_GetAttrString(pyhooks, "exc_where") : NULL;
    self->task_name = self->exc_where ? PyObject_GetAttrString(pyhooks, "task_name") : NULL;
    PyObject *msg = self->task_name ? PyObject_GetAttrString(pyhooks, "exc_message") : NULL;
    Py_DECREF(ctxmod);
    Py_DECREF(pyhooks);
    if (!self->cc.corr_var || !self->exc_type_name || !msg) { Py_XDECREF(msg); return -1; }
    self->exc_message = msg;
    self->values = Py_NewRef(values);
    self->capture_args = PyObject_GetAttrString(values, "capture_args");
    self->safe_repr = self->capture_args ? PyObject_GetAttrString(values, "safe_repr") : NULL;
    self->safe_attr = self->safe_repr ? PyObject_GetAttrString(values, "safe_attr") : NULL;
    if (!self->safe_attr) return -1;
    if (fast_values(self) < 0) return -1;
    /* what redaction needs of C now (redaction.configure pushes later changes) */
    PyObject *redaction = PyImport_ImportModule("elixirscope.capture.redaction");
    PyObject *flags = redaction ? PyObject_CallMethod(redaction, "c_flags", NULL) : NULL;
    Py_XDECREF(redaction);
    if (!flags) return -1;
    long f = PyLong_AsLong(flags);
    Py_DECREF(flags);
    if (f == -1 && PyErr_Occurred()) return -1;
    redact_flags = f;
    self->cc.stack_var = PyContextVar_New("elixirscope_c_call_stack", NULL);
    self->suspended = PyDict_New();
    if (!self->cc.stack_var || !self->suspended) return -1;
    self->rng = (uint64_t)wall_ns() | 1;
    self->rng_generation = fork_generation;
    return 0;
}

static int Hooks_traverse(Hooks *self, visitproc visit, void *arg) {
    for (Py_ssize_t i = 0; i < self->nfuncs; i++) Py_VISIT(self->funcs[i].exit);
    Py_VISIT(self->suspended);
    Py_VISIT(self->capture_args);
    Py_VISIT(self->safe_repr);
    Py_VISIT(self->safe_attr);
    Py_VISIT(self->exc_message);
    Py_VISIT(self->exc_type_name);
    Py_VISIT(self->exc_where);
    Py_VISIT(self->task_name);
    Py_VISIT(self->objects);
    Py_VISIT(self->values);
    Py_VISIT(self->cc.vars);
    Py_VISIT(self->values_dict);
    Py_VISIT(self->redact);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int Hooks_clear(Hooks *self) {
    for (Py_ssize_t i = 0; i < self->nfuncs; i++) {
        Py_CLEAR(self->funcs[i].exit);
        Py_CLEAR(self->funcs[i].name);
        Py_CLEAR(self->funcs[i].names);
        Py_CLEAR(self->funcs[i].mask_key);
        Py_CLEAR(self->funcs[i].file);
        free(self->funcs[i].enc);
        self->funcs[i].enc = NULL;
        free(self->funcs[i].names_enc);
        self->funcs[i].names_enc = NULL;
    }
    Py_CLEAR(self->values_dict);
    Py_CLEAR(self->redact);
    Py_CLEAR(self->redacted);
    Py_CLEAR(self->sens_key);
    Py_CLEAR(self->suspended);
    Py_CLEAR(self->capture_args);
    Py_CLEAR(self->safe_repr);
    Py_CLEAR(self->safe_attr);
    Py_CLEAR(self->exc_message);
    Py_CLEAR(self->exc_type_name);
    Py_CLEAR(self->exc_where);
    Py_CLEAR(self->task_name);
    Py_CLEAR(self->objects);
    Py_CLEAR(self->values);
    Py_CLEAR(self->ring);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->ids);
    Py_CLEAR(self->cc.stack_var);
    Py_CLEAR(self->cc.corr_var);
    self->cc.cell = NULL;
    Py_CLEAR(self->cc.vars);
    Py_CLEAR(self->last_error);
    return 0;
}

static void Hooks_dealloc(Hooks *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Hooks_clear(self);
    PyMem_Free(self->funcs);
    tp->tp_free((PyObject *)self);
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) Py_DECREF(tp);
}

/* value_text(v) / args_text(names, values): what call_args / ret record, for
 * tests comparing the C rendering with values.safe_repr / capture_args. */
static PyObject *Hooks_value_text(Hooks *self, PyObject *v) { return value_text(self, v); }

static PyObject *Hooks_args_text(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "args_text(names, values)");
        return NULL;
    }
    Func scratch = {0};
    CallValues cv = {.n = -1};
    int rc = capture_args(self, &scratch, args[0], args[1], &cv);
    Py_XDECREF(scratch.names);
    Py_XDECREF(scratch.mask_key);
    free(scratch.names_enc);
    if (rc < 0) return NULL;
    if (cv.dict) {
        PyObject *d = Py_NewRef(cv.dict);
        call_values_clear(&cv);
        return d;
    }
    PyObject *out = PyDict_New();
    for (Py_ssize_t i = 0; out && i < cv.n; i++)
        if (PyDict_SetItem(out, PyTuple_GET_ITEM(args[0], i), cv.texts[i]) < 0) Py_CLEAR(out);
    call_values_clear(&cv);
    return out;
}

/* async_iter / async_with: the proxies of async_proxies.py, handed this hooks object (they
 * call awaiting/resumed around each implicit await). Their errors are the program's
 * (raised by its __aiter__, ...) and propagate; a missing helper is a hook error. */
static PyObject *async_iter_fn, *async_with_fn;

static PyObject *async_helper(PyObject **cache, const char *name) {
    if (!*cache) {
        PyObject *mod = PyImport_ImportModule("elixirscope.capture.async_proxies");
        *cache = mod ? PyObject_GetAttrString(mod, name) : NULL;
        Py_XDECREF(mod);
    }
    return *cache;
}

static PyObject *async_proxy(Hooks *self, PyObject *const *args, Py_ssize_t n,
                             PyObject **cache, const char *name) {
    if (n != 3) { self->hook_errors++; return Py_NewRef(n ? args[n - 1] : Py_None); }
    PyObject *fn = async_helper(cache, name);
    if (!fn) { hook_error(self); return Py_NewRef(args[2]); }
    PyObject *stack[4] = {(PyObject *)self, args[0], args[1], args[2]};
    return PyObject_Vectorcall(fn, stack, 4, NULL);
}

static PyObject *Hooks_async_iter(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    return async_proxy(self, args, n, &async_iter_fn, "async_iter");
}

static PyObject *Hooks_async_with(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    return async_proxy(self, args, n, &async_with_fn, "async_with");
}

/* note_error(exc): count an error swallowed by the async proxies. */
static PyObject *Hooks_note_error(Hooks *self, PyObject *exc) {
    if (PyExceptionInstance_Check(exc)) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        hook_error(self);
    } else {
        self->hook_errors++;
    }
    Py_RETURN_NONE;
}

/* register / set_level / function: the registry in hooks.py, so that the C type
 * can itself be __elixirscope__ (an exact instance lets the interpreter call
 * call()/ret() through its specialised method-descriptor fast path). */
static PyObject *registry_call(const char *fn, PyObject *args, PyObject *kw) {
    PyObject *mod = PyImport_ImportModule("elixirscope.capture.hooks");
    PyObject *f = mod ? PyObject_GetAttrString(mod, fn) : NULL;
    Py_XDECREF(mod);
    if (!f) return NULL;
    PyObject *r = PyObject_Call(f, args, kw);
    Py_DECREF(f);
    return r;
}
static PyObject *Hooks_register(Hooks *self, PyObject *args, PyObject *kw) {
    return registry_call("register", args, kw);
}
static PyObject *Hooks_set_level(Hooks *self, PyObject *args, PyObject *kw) {
    return registry_call("set_level", args, kw);
}
static PyObject *Hooks_function(Hooks *self, PyObject *args, PyObject *kw) {
    return registry_call("function", args, kw);
}

/* ------------------------------------------------------------------ HttpRequest
 *
 * One HTTP request the ASGI middleware records (integrations/asgi.py), in C:
 * RequestRecording.begin and .end (integrations/recording.py) and the counting,
 * header-adding receive and send of asgi._http, for a request carrying no
 * tracestate nor X-Correlation-ID and no traceparent or a plain valid one
 * (version 00, as sent) - most requests.
 * The same events as the Python path, which takes every other request (and any
 * value of an unusual type: Hooks.http_request returns None for it). A request
 * is a dozen interpreted calls and as many objects in Python; under a server,
 * whose own code evicts them from the caches between requests, each costs
 * several times what it does in a loop. The Python helpers it calls for the
 * rare cases are given once by http_setup (asgi.py). */

static PyObject *http_request_var; /* recording.current_request */
static PyObject *http_path_text, *http_clean_query, *http_status_code, *http_with_headers,
    *http_error_fields;
static PyObject *recorder_dict; /* vars(capture.recorder): its _recorder, read by both setups' users */
static PyObject *http_rate, *http_fid; /* sampling._rate, the request's function id */
static PyObject *s__recorder, *s_emit; /* interned at import (declared with the sqlite3 ones) */
static int64_t http_recorded; /* requests recorded here: recording.stats() adds them */
static int64_t http_left_out; /* requests the sampler left out here: recording.stats() adds them */
static PyObject *http_out_var, *http_out_fid; /* recorder.sampled_out, sampled.SampledOut's fid */
static PyObject *s_http, *s_req, *s_reqend, *s_h_request, *s_h_start, *s_h_body, *s_body,
    *s_headers, *s_status, *s_query_string, *s_client, *s_route, *s_path_format,
    *http_names, *b_traceparent, *b_xcid, *s_root;
#define HTTP_MAX_TEXT 2048 /* urls.MAX_URL_CHARS */

typedef struct {
    PyObject_HEAD
    Hooks *hooks;
    int32_t fid;
    int active, status;
    PyObject *scope, *receive, *send, *arrived;
    PyObject *method, *path, *trace_id, *span_id, *parent_span; /* parent: the caller's, or NULL */
    char flags[3];
    PyObject *route, *error; /* set by a framework's hooks (recording.set_route, a 500's error) */
    PyObject *corr_token, *req_token;
    int64_t start_id, t0, request_bytes, received, sent;
} HttpRequest;

static PyTypeObject HttpRequestType;

static inline int64_t mono_ns(void) { /* time.perf_counter_ns */
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline uint64_t trace_next(void) { /* splitmix64; never 0 */
    uint64_t z = mix64(trace_rng += 0x9e3779b97f4a7c15ULL);
    return z ? z : 1;
}

static PyObject *hex_id(int halves) { /* 16 or 32 lowercase hex chars, never all zero */
    PyObject *s = PyUnicode_New(16 * halves, 127);
    if (!s) return NULL;
    char *p = (char *)PyUnicode_1BYTE_DATA(s);
    for (int i = 0; i < halves; i++) hex64(p + 16 * i, trace_next());
    return s;
}

/* urls.path_text(v): an ASCII str within the limit is itself; anything else goes to Python. */
static PyObject *http_text(PyObject *v) {
    if (PyUnicode_CheckExact(v) && PyUnicode_IS_ASCII(v) &&
        PyUnicode_GET_LENGTH(v) <= HTTP_MAX_TEXT)
        return Py_NewRef(v);
    return PyObject_CallOneArg(http_path_text, v);
}

static int ascii_lower_eq(const char *a, const char *lower, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != lower[i]) return 0;
    }
    return 1;
}

/* Which of the headers read here a name is (any case), H_OTHER for any other. */
enum { H_OTHER = 0, H_LENGTH, H_TRACEPARENT, H_TRACESTATE, H_CORRELATION };
static int header_kind(PyObject *name) {
    const char *s = PyBytes_AS_STRING(name);
    switch (PyBytes_GET_SIZE(name)) {
    case 14: return ascii_lower_eq(s, "content-length", 14) ? H_LENGTH : H_OTHER;
    case 11: return ascii_lower_eq(s, "traceparent", 11) ? H_TRACEPARENT : H_OTHER;
    case 10: return ascii_lower_eq(s, "tracestate", 10) ? H_TRACESTATE : H_OTHER;
    case 16: return ascii_lower_eq(s, "x-correlation-id", 16) ? H_CORRELATION : H_OTHER;
    default: return H_OTHER;
    }
}

/* recording.content_length of a header's bytes: 1-18 ASCII digits, else -1. */
static int64_t length_of(PyObject *value) {
    Py_ssize_t n = PyBytes_GET_SIZE(value);
    const char *s = PyBytes_AS_STRING(value);
    if (n < 1 || n > 18) return -1;
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* A pair of a headers list (tuple or list of two), else NULL. Borrowed. */
static inline PyObject *const *pair_items(PyObject *pair) {
    if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2)
        return &PyTuple_GET_ITEM(pair, 0);
    if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) return ((PyListObject *)pair)->ob_item;
    return NULL;
}

/* A traceparent exactly as sent by a caller at version 00 (tracecontext.parse_traceparent
 * finds it valid): 00-<32 hex>-<16 hex>-<2 hex>, lowercase, ids not all zero. */
static int plain_traceparent(PyObject *value) {
    if (!PyBytes_CheckExact(value) || PyBytes_GET_SIZE(value) != 55) return 0;
    const char *s = PyBytes_AS_STRING(value);
    if (s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-') return 0;
    int trace_zero = 1, span_zero = 1;
    for (int i = 3; i < 55; i++) {
        if (i == 35 || i == 52) continue;
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
        if (c != '0' && i < 35) trace_zero = 0;
        if (c != '0' && i > 35 && i < 52) span_zero = 0;
    }
    return !trace_zero && !span_zero;
}

/* The request's Content-Length (-1: none); -2 when the Python path must take it.
 * `traceparent`: the last traceparent header (borrowed), if any. */
static int64_t scan_headers(PyObject *headers, PyObject **traceparent) {
    *traceparent = NULL;
    if (!headers || headers == Py_None) return -1;
    PyObject *const *items;
    Py_ssize_t n;
    if (PyList_CheckExact(headers)) {
        items = ((PyListObject *)headers)->ob_item;
        n = PyList_GET_SIZE(headers);
    } else if (PyTuple_CheckExact(headers)) {
        items = &PyTuple_GET_ITEM(headers, 0);
        n = PyTuple_GET_SIZE(headers);
    } else {
        return -2;
    }
    int64_t length = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *const *pair = pair_items(items[i]);
        if (!pair || !PyBytes_CheckExact(pair[0])) return -2;
        int kind = header_kind(pair[0]);
        if (kind == H_TRACESTATE || kind == H_CORRELATION) return -2;
        if (kind == H_TRACEPARENT) *traceparent = pair[1];
        if (kind == H_LENGTH) {
            if (!PyBytes_CheckExact(pair[1])) return -2;
            length = length_of(pair[1]); /* the last one, as a dict of them keeps */
        }
    }
    return length;
}

/* "host:port" of an ASGI client, Py_None when there is none; NULL without an error:
 * the Python path's. */
static PyObject *client_text(PyObject *client) {
    if (!client || client == Py_None) return Py_NewRef(Py_None);
    if (!PyTuple_CheckExact(client) || PyTuple_GET_SIZE(client) != 2) return NULL;
    PyObject *host = PyTuple_GET_ITEM(client, 0), *port = PyTuple_GET_ITEM(client, 1);
    if (!PyUnicode_CheckExact(host) || !PyUnicode_IS_ASCII(host) || !PyLong_CheckExact(port) ||
        PyUnicode_GET_LENGTH(host) > 256)
        return NULL;
    PyObject *digits = PyLong_Type.tp_repr(port);
    if (!digits) return NULL;
    PyObject *parts[3] = {host, s_colon, digits};
    PyObject *out = texts_joined(parts, 3, "");
    Py_DECREF(digits);
    return out;
}


/* The request's Content-Length (-1: none) and its traceparent as a caller at version 00
 * sends it (borrowed; NULL: none), from the scope's headers; -2 when the Python path must
 * take the request (a header of an unusual shape, tracestate, X-Correlation-ID, a
 * traceparent of another form), -3 with an error. */
static int64_t request_headers(PyObject *scope, PyObject **traceparent) {
    PyObject *headers = PyDict_GetItemWithError(scope, s_headers);
    *traceparent = NULL;
    if (!headers && PyErr_Occurred()) return -3;
    int64_t length = scan_headers(headers, traceparent);
    return *traceparent && !plain_traceparent(*traceparent) ? -2 : length;
}

static PyObject *http_request_scanned(Hooks *self, Py_ssize_t fid, PyObject *scope,
                                      PyObject *receive, PyObject *send, PyObject *arrived,
                                      int64_t length, PyObject *traceparent);

/* Hooks.http_request(fid, scope, receive, send, arrived): the request begun (see the
 * section's comment), or None when the Python path must record it (nothing done).
 * `arrived`: the context the server's receive and send run in; None: a copy of the
 * current one. */
static PyObject *Hooks_http_request(Hooks *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "Expected http_request(fid, scope, receive, send, arrived) - at Hooks");
        return NULL;
    }
    PyObject *scope = args[1], *traceparent;
    if (!PyDict_CheckExact(scope) || (args[4] != Py_None && !PyContext_CheckExact(args[4])))
        Py_RETURN_NONE;
    int64_t length = request_headers(scope, &traceparent);
    if (length == -3) return NULL;
    if (length == -2) Py_RETURN_NONE;
    return http_request_scanned(self, fid_of(args[0]), scope, args[2], args[3], args[4], length,
                                traceparent);
}

/* Hooks.http_request once the scope's headers are read (request_headers: `length` and
 * `traceparent`, not -2). */
static PyObject *http_request_scanned(Hooks *self, Py_ssize_t fid, PyObject *scope,
                                      PyObject *receive, PyObject *send, PyObject *arrived,
                                      int64_t length, PyObject *traceparent) {
    if (!http_request_var || !self->ring || !self->clock || !self->ids || fid <= 0 ||
        fid >= self->nfuncs || !self->funcs[fid].name)
        Py_RETURN_NONE;
    PyObject *method = PyDict_GetItemWithError(scope, s_method); /* borrowed, all */
    PyObject *path = method ? PyDict_GetItemWithError(scope, s_path) : NULL;
    if (PyErr_Occurred()) return NULL;
    if (!method || !PyUnicode_CheckExact(method) || !PyUnicode_GET_LENGTH(method))
        Py_RETURN_NONE; /* "GET" for none, str(...) of another type: Python's */
    PyObject *client = PyDict_GetItemWithError(scope, s_client);
    if (!client && PyErr_Occurred()) return NULL;
    PyObject *where = client_text(client);
    if (!where) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *query = PyDict_GetItemWithError(scope, s_query_string);
    if (!query && PyErr_Occurred()) { Py_DECREF(where); return NULL; }
    HttpRequest *r = PyObject_GC_New(HttpRequest, &HttpRequestType);
    if (!r) { Py_DECREF(where); return NULL; }
    r->hooks = (Hooks *)Py_NewRef(self);
    r->fid = (int32_t)fid;
    r->active = r->status = 0;
    r->scope = Py_NewRef(scope);
    r->receive = Py_NewRef(receive);
    r->send = Py_NewRef(send);
    r->arrived = arrived == Py_None ? PyContext_CopyCurrent() : Py_NewRef(arrived);
    r->method = r->path = r->trace_id = r->span_id = r->parent_span = r->route = r->error = NULL;
    memcpy(r->flags, "01", 3);
    r->corr_token = r->req_token = NULL;
    r->start_id = r->t0 = r->received = r->sent = 0;
    r->request_bytes = length;
    PyObject_GC_Track(r);
    if (!r->arrived) { /* nothing begun */
        Py_DECREF(where);
        Py_DECREF(r);
        return NULL;
    }
    PyObject *cleaned = NULL, *values = NULL;
    r->method = http_text(method);
    r->path = r->method ? http_text(path && PyObject_IsTrue(path) == 1 ? path : s_root) : NULL;
    if (r->path && query && query != Py_None && !(PyBytes_CheckExact(query) && !PyBytes_GET_SIZE(query)))
        cleaned = PyObject_CallOneArg(http_clean_query, query);
    else if (r->path)
        cleaned = Py_NewRef(Py_None);
    if (cleaned && traceparent) { /* the caller's trace, its flags; its span the parent */
        const char *tp = PyBytes_AS_STRING(traceparent);
        r->trace_id = PyUnicode_FromStringAndSize(tp + 3, 32);
        r->parent_span = r->trace_id ? PyUnicode_FromStringAndSize(tp + 36, 16) : NULL;
        memcpy(r->flags, tp + 53, 2);
        r->span_id = r->parent_span ? hex_id(1) : NULL;
        values = r->span_id ? PyTuple_Pack(2, r->method, r->path) : NULL;
    } else if (cleaned) {
        r->trace_id = hex_id(2);
        r->span_id = r->trace_id ? hex_id(1) : NULL;
        values = r->span_id ? PyTuple_Pack(2, r->method, r->path) : NULL;
    }
    if (!values) { /* nothing begun yet */
        Py_XDECREF(cleaned);
        Py_DECREF(where);
        Py_DECREF(r);
        return NULL;
    }
    /* begun from here: errors are the hooks' (counted), the request goes on. The
     * variables first, the call last: a set after it would make the handler's first
     * hook (or end's) fork the call stack's cell once more (see own_cell) */
    if (!(r->corr_token = PyContextVar_Set(self->cc.corr_var, r->trace_id))) hook_error(self);
    if (!(r->req_token = PyContextVar_Set(http_request_var, (PyObject *)r))) hook_error(self);
    enter(self, fid, http_names, values, 0);
    Py_DECREF(values);
    r->active = 1;
    http_recorded++;
    PyObject *bytes = PyLong_FromLongLong(length);
    if (bytes) {
        PyObject *fields[12] = {s_req, s_http, r->method, r->path, cleaned, where, bytes,
                                r->trace_id, r->span_id, OR_NONE(r->parent_span), Py_None,
                                Py_None};
        PyObject *id = emit_event(self, fields, 12);
        if (id) {
            r->start_id = PyLong_AsLongLong(id);
            Py_DECREF(id);
        }
        Py_DECREF(bytes);
    }
    if (PyErr_Occurred()) hook_error(self);
    Py_DECREF(cleaned);
    Py_DECREF(where);
    r->t0 = mono_ns();
    return (PyObject *)r;
}

/* Body bytes of an http.request message the server's receive gave (StepsIn's counter). */
static void http_count_received(PyObject *req, PyObject *message) {
    HttpRequest *r = (HttpRequest *)req;
    if (!PyDict_CheckExact(message)) return;
    PyObject *kind = PyDict_GetItemWithError(message, s_type);
    if (kind && PyUnicode_CheckExact(kind) && PyUnicode_Compare(kind, s_h_request) == 0) {
        PyObject *body = PyDict_GetItemWithError(message, s_body);
        if (body && PyBytes_CheckExact(body)) r->received += PyBytes_GET_SIZE(body);
        else if (body && body != Py_None) {
            Py_ssize_t size = PyObject_IsTrue(body) == 1 ? PyObject_Length(body) : 0;
            if (size > 0) r->received += size;
        }
    }
    if (PyErr_Occurred()) {
        if (r->hooks) hook_error(r->hooks);
        else PyErr_Clear();
    }
}

/* Its parts are there (tp_clear, in a collection of a cycle holding it, takes them). */
static int http_live(HttpRequest *self) {
    if (self->hooks && self->receive && self->send && self->arrived && self->trace_id &&
        self->span_id && self->scope)
        return 1;
    PyErr_SetString(PyExc_RuntimeError,
                    "Expected a live HttpRequest (a collection cleared it) - at HttpRequest");
    return 0;
}

/* The awaitable a server's receive() or send() gave (taken; NULL: their error), run in
 * the context the request arrived in (StepsIn; `counter` counts a receive's body). */
static PyObject *in_arrival(PyObject *aw, PyObject *arrived, PyObject *counter) {
    if (!aw) return NULL;
    PyObject *out = steps_in(aw, arrived, counter);
    Py_DECREF(aw);
    return out;
}

static PyObject *HttpRequest_receive(HttpRequest *self, PyObject *Py_UNUSED(ignored)) {
    if (!http_live(self)) return NULL;
    return in_arrival(PyObject_CallNoArgs(self->receive), self->arrived, (PyObject *)self);
}

/* "00-<trace id>-<span id>-<flags>", the response's traceparent: bytes (as_bytes) or str. */
static PyObject *traceparent_text(HttpRequest *self, int as_bytes) {
    PyObject *t = self->trace_id, *s = self->span_id;
    if (!PyUnicode_IS_ASCII(t) || !PyUnicode_IS_ASCII(s) || PyUnicode_GET_LENGTH(t) != 32 ||
        PyUnicode_GET_LENGTH(s) != 16) { /* not ours: never so, but say it as it is */
        PyObject *text = PyUnicode_FromFormat("00-%U-%U-%s", t, s, self->flags);
        if (!text || !as_bytes) return text;
        PyObject *b = PyUnicode_AsASCIIString(text);
        Py_DECREF(text);
        return b;
    }
    char buf[55];
    memcpy(buf, "00-", 3);
    memcpy(buf + 3, PyUnicode_1BYTE_DATA(t), 32);
    buf[35] = '-';
    memcpy(buf + 36, PyUnicode_1BYTE_DATA(s), 16);
    buf[52] = '-';
    memcpy(buf + 53, self->flags, 2);
    return as_bytes ? PyBytes_FromStringAndSize(buf, 55) : PyUnicode_FromStringAndSize(buf, 55);
}

/* http.response.start with traceparent and X-Correlation-ID added where the app set
 * neither (asgi._with_headers for headers of an unusual shape). New ref or NULL. */
static PyObject *with_trace_headers(HttpRequest *self, PyObject *message) {
    PyObject *headers = PyDict_GetItemWithError(message, s_headers);
    if (!headers && PyErr_Occurred()) return NULL;
    PyObject *out = NULL, *list = NULL;
    int python = 0;
    if (!headers || headers == Py_None) list = PyList_New(0);
    else if (PyList_CheckExact(headers) || PyTuple_CheckExact(headers)) list = PySequence_List(headers);
    else python = 1;
    int have_tp = 0, have_cid = 0;
    for (Py_ssize_t i = 0; list && i < PyList_GET_SIZE(list); i++) {
        PyObject *const *pair = pair_items(PyList_GET_ITEM(list, i));
        if (!pair || !PyBytes_CheckExact(pair[0])) { python = 1; break; }
        int kind = header_kind(pair[0]);
        have_tp |= kind == H_TRACEPARENT;
        have_cid |= kind == H_CORRELATION;
    }
    if (python) {
        PyObject *traceparent = traceparent_text(self, 0);
        PyObject *extra = traceparent ? Py_BuildValue("[(sO)(sO)]", "traceparent", traceparent,
                                                      "x-correlation-id", self->trace_id)
                                      : NULL;
        out = extra ? PyObject_CallFunctionObjArgs(http_with_headers, message, extra, NULL) : NULL;
        Py_XDECREF(extra);
        Py_XDECREF(traceparent);
    } else if (list && have_tp && have_cid) {
        out = Py_NewRef(message);
    } else if (list) {
        PyObject *tp = have_tp ? NULL : traceparent_text(self, 1);
        PyObject *cid = have_cid ? NULL : PyUnicode_AsASCIIString(self->trace_id);
        PyObject *a = tp ? PyTuple_Pack(2, b_traceparent, tp) : NULL;
        PyObject *b = cid ? PyTuple_Pack(2, b_xcid, cid) : NULL;
        int ok = (have_tp || (a && PyList_Append(list, a) == 0)) &&
                 (have_cid || (b && PyList_Append(list, b) == 0));
        Py_XDECREF(tp); Py_XDECREF(cid); Py_XDECREF(a); Py_XDECREF(b);
        PyObject *copy = ok ? PyDict_Copy(message) : NULL;
        if (copy && PyDict_SetItem(copy, s_headers, list) < 0) Py_CLEAR(copy);
        out = copy;
    }
    Py_XDECREF(list);
    return out;
}

/* recording.status_code: an int 100-999, else 0 (Python's for another type). */
static int status_of(PyObject *v) {
    if (v && PyLong_CheckExact(v)) {
        long code = PyLong_AsLong(v);
        if (code == -1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
        return code >= 100 && code <= 999 ? (int)code : 0;
    }
    PyObject *code = PyObject_CallOneArg(http_status_code, v ? v : Py_None);
    long out = code ? PyLong_AsLong(code) : 0;
    Py_XDECREF(code);
    return (int)out;
}

/* send(message): the status, body bytes and trace headers noted, then the server's send
 * run in the context the request arrived in. Errors noting are the hooks' (counted); the
 * server's own go to the app as they would. */
static PyObject *HttpRequest_send(HttpRequest *self, PyObject *message) {
    if (!http_live(self)) return NULL;
    PyObject *sent = Py_NewRef(message);
    if (PyDict_CheckExact(message)) {
        PyObject *kind = PyDict_GetItemWithError(message, s_type);
        if (kind && PyUnicode_CheckExact(kind)) {
            if (PyUnicode_Compare(kind, s_h_body) == 0) {
                PyObject *body = PyDict_GetItemWithError(message, s_body);
                if (body && PyBytes_CheckExact(body)) self->sent += PyBytes_GET_SIZE(body);
                else if (body && body != Py_None && PyObject_IsTrue(body) == 1) {
                    Py_ssize_t size = PyObject_Length(body);
                    if (size > 0) self->sent += size;
                }
            } else if (PyUnicode_Compare(kind, s_h_start) == 0) {
                self->status = status_of(PyDict_GetItemWithError(message, s_status));
                PyObject *added = PyErr_Occurred() ? NULL : with_trace_headers(self, message);
                if (added) Py_SETREF(sent, added);
            }
        }
    }
    if (PyErr_Occurred()) hook_error(self->hooks);
    PyObject *aw = PyObject_CallOneArg(self->send, sent);
    Py_DECREF(sent);
    return in_arrival(aw, self->arrived, NULL);
}

#if PY_VERSION_HEX >= 0x030D0000
#define optional_attr PyObject_GetOptionalAttr
#else
#define optional_attr _PyObject_LookupAttr
#endif

/* The route template a router left in the scope (asgi._route_of), else the one a
 * framework named (set_route); None. New ref or NULL. */
static PyObject *route_of(HttpRequest *self) {
    PyObject *route = PyDict_GetItemWithError(self->scope, s_route);
    PyObject *path = NULL;
    if (route && route != Py_None) {
        Py_INCREF(route);
        if (optional_attr(route, s_path, &path) < 0) PyErr_Clear();
        if (!path || !PyObject_IsTrue(path)) {
            Py_CLEAR(path);
            if (optional_attr(route, s_path_format, &path) < 0) PyErr_Clear();
        }
        Py_DECREF(route);
        if (path && !PyUnicode_Check(path)) Py_CLEAR(path);
        if (PyErr_Occurred()) PyErr_Clear();
    }
    if (!path || !PyUnicode_GET_LENGTH(path)) {
        Py_XDECREF(path);
        if (!self->route || self->route == Py_None) return Py_NewRef(Py_None);
        path = Py_NewRef(self->route);
    }
    PyObject *text = http_text(path);
    Py_DECREF(path);
    return text;
}

/* leave(fid) for a call that ended with `exc` (an exception instance) or None. */
static void leave_for(Hooks *h, int32_t fid, PyObject *exc) {
    if (exc == Py_None) {
        leave(h, fid, Py_None, Py_None, Py_None);
        return;
    }
    PyObject *trace = PyException_GetTraceback(exc); /* new ref or NULL */
    leave(h, fid, (PyObject *)Py_TYPE(exc), exc, trace ? trace : Py_None);
    Py_XDECREF(trace);
}

/* end(exc)'s argument: an exception or None, else a TypeError naming `where`. */
static int end_arg_ok(PyObject *exc, const char *where) {
    if (exc == Py_None || PyExceptionInstance_Check(exc)) return 1;
    PyErr_Format(PyExc_TypeError, "Expected an exception or None, got %.100s - at %s",
                 Py_TYPE(exc)->tp_name, where);
    return 0;
}

static void reset_var(Hooks *h, PyObject *var, PyObject **token, PyObject *none_value) {
    PyObject *t = *token;
    *token = NULL;
    if (!t) return;
    if (PyContextVar_Reset(var, t) < 0) { /* ended in another context: it ends there too */
        PyErr_Clear();
        PyObject *again = PyContextVar_Set(var, none_value);
        if (again) Py_DECREF(again);
        else hook_error(h);
    }
    Py_DECREF(t);
}

/* end(exc): the request closed (RequestRecording.end); exc the exception that left the
 * app, or None. Never raises; a second end does nothing. */
static PyObject *HttpRequest_end(HttpRequest *self, PyObject *exc) {
    if (!self->active) Py_RETURN_NONE;
    if (!self->scope || !self->method || !self->path) { /* cleared by a collection */
        self->active = 0;
        Py_RETURN_NONE;
    }
    if (!end_arg_ok(exc, "HttpRequest.end")) return NULL;
    self->active = 0;
    Hooks *h = self->hooks;
    if (!h) Py_RETURN_NONE; /* cleared by a collection: nothing left to end */
    PyObject *et, *ev, *tb; /* whatever was pending stays so */
    PyErr_Fetch(&et, &ev, &tb);
    int64_t duration = mono_ns() - self->t0;
    PyObject *shown = exc != Py_None ? exc : self->error ? self->error : Py_None;
    int status = exc != Py_None && !self->status ? 500 : self->status;
    PyObject *route = route_of(self);
    PyObject *err = shown == Py_None ? NULL : PyObject_CallOneArg(http_error_fields, shown);
    if (err && (!PyTuple_CheckExact(err) || PyTuple_GET_SIZE(err) != 3)) Py_CLEAR(err);
    PyObject *start = PyLong_FromLongLong(self->start_id), *code = PyLong_FromLong(status),
             *dur = PyLong_FromLongLong(duration),
             *req = PyLong_FromLongLong(self->request_bytes < 0 ? self->received
                                                                 : self->request_bytes),
             *resp = PyLong_FromLongLong(self->sent);
    int bound = h->ring && h->clock && h->ids; /* not while a collection clears the hooks */
    if (bound && route && start && code && dur && req && resp && (err || shown == Py_None)) {
        PyObject *fields[12] = {s_reqend, start, self->method, self->path, route, code, dur,
                                req, resp,
                                err ? PyTuple_GET_ITEM(err, 0) : Py_None,
                                err ? PyTuple_GET_ITEM(err, 1) : Py_None,
                                err ? PyTuple_GET_ITEM(err, 2) : Py_None};
        PyObject *id = emit_event(h, fields, 12);
        Py_XDECREF(id);
    }
    Py_XDECREF(start); Py_XDECREF(code); Py_XDECREF(dur); Py_XDECREF(req); Py_XDECREF(resp);
    Py_XDECREF(route); Py_XDECREF(err);
    if (PyErr_Occurred()) hook_error(h);
    leave_for(h, self->fid, exc); /* the call first: the resets fork nothing after it */
    if (PyErr_Occurred()) hook_error(h);
    reset_var(h, http_request_var, &self->req_token, Py_None);
    if (h->cc.corr_var) reset_var(h, h->cc.corr_var, &self->corr_token, Py_None);
    PyErr_Restore(et, ev, tb);
    Py_RETURN_NONE;
}

static int HttpRequest_traverse(HttpRequest *self, visitproc visit, void *arg) {
    Py_VISIT(self->hooks);
    Py_VISIT(self->scope);
    Py_VISIT(self->receive);
    Py_VISIT(self->send);
    Py_VISIT(self->arrived);
    Py_VISIT(self->route);
    Py_VISIT(self->error);
    Py_VISIT(self->corr_token);
    Py_VISIT(self->req_token);
    return 0;
}

static int HttpRequest_clear(HttpRequest *self) {
    Py_CLEAR(self->hooks);
    Py_CLEAR(self->scope);
    Py_CLEAR(self->receive);
    Py_CLEAR(self->send);
    Py_CLEAR(self->arrived);
    Py_CLEAR(self->method);
    Py_CLEAR(self->path);
    Py_CLEAR(self->trace_id);
    Py_CLEAR(self->span_id);
    Py_CLEAR(self->parent_span);
    Py_CLEAR(self->route);
    Py_CLEAR(self->error);
    Py_CLEAR(self->corr_token);
    Py_CLEAR(self->req_token);
    return 0;
}

static void HttpRequest_dealloc(HttpRequest *self) {
    PyObject_GC_UnTrack(self);
    HttpRequest_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *HttpRequest_get_active(HttpRequest *self, void *c) {
    return PyBool_FromLong(self->active);
}
static PyObject *HttpRequest_get_protocol(HttpRequest *self, void *c) { return Py_NewRef(s_http); }
static PyObject *HttpRequest_get_none(HttpRequest *self, void *c) { Py_RETURN_NONE; }

static PyMemberDef HttpRequest_members[] = {
    {"route", T_OBJECT, offsetof(HttpRequest, route), 0,
     "The route template a framework named (recording.set_route)."},
    {"error", T_OBJECT, offsetof(HttpRequest, error), 0,
     "The exception of a 500 a framework answered itself."},
    {"method", T_OBJECT, offsetof(HttpRequest, method), READONLY, NULL},
    {"path", T_OBJECT, offsetof(HttpRequest, path), READONLY, NULL},
    {"trace_id", T_OBJECT, offsetof(HttpRequest, trace_id), READONLY, NULL},
    {"correlation_id", T_OBJECT, offsetof(HttpRequest, trace_id), READONLY,
     "The request's correlation id: its trace id."},
    {"span_id", T_OBJECT, offsetof(HttpRequest, span_id), READONLY, NULL},
    {"parent_span", T_OBJECT, offsetof(HttpRequest, parent_span), READONLY,
     "The caller's span (its traceparent's), or None."},
    {"start_id", T_LONGLONG, offsetof(HttpRequest, start_id), READONLY, NULL},
    {"request_bytes", T_LONGLONG, offsetof(HttpRequest, request_bytes), READONLY, NULL},
    {NULL}};

static PyGetSetDef HttpRequest_getset[] = {
    {"active", (getter)HttpRequest_get_active, NULL, "Begun and not yet ended.", NULL},
    {"protocol", (getter)HttpRequest_get_protocol, NULL, NULL, NULL},
    {"tracestate", (getter)HttpRequest_get_none, NULL, NULL, NULL},
    {"ws_state", (getter)HttpRequest_get_none, NULL, NULL, NULL},
    {NULL}};

static PyMethodDef HttpRequest_methods[] = {
    {"receive", (PyCFunction)HttpRequest_receive, METH_NOARGS,
     "The server's receive(), its body counted, run in the context the request arrived in."},
    {"send", (PyCFunction)HttpRequest_send, METH_O,
     "The server's send(message), the status, body and trace headers noted."},
    {"end", (PyCFunction)HttpRequest_end, METH_O,
     "end(exc or None): the request closed (the exception that left the app)."},
    {NULL}};

static PyTypeObject HttpRequestType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.HttpRequest",
    .tp_basicsize = sizeof(HttpRequest),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)HttpRequest_traverse,
    .tp_clear = (inquiry)HttpRequest_clear,
    .tp_dealloc = (destructor)HttpRequest_dealloc,
    .tp_members = HttpRequest_members,
    .tp_getset = HttpRequest_getset,
    .tp_methods = HttpRequest_methods,
    .tp_doc = "One HTTP request recorded by the ASGI middleware in C (Hooks.http_request).",
};

/* ------------------------------------------------------------ a request left out
 * What asgi._record does for a request integrations.request_sampling leaves out, in
 * C: recorder.sampled_out set, a call the hooks never record entered
 * (sampled.SampledOut's function: sampling 0, so nothing under it is recorded), the
 * server's receive and send run in the context the request arrived in; end() undoes
 * it. Nothing is emitted; the request is counted (http_left_out). */
typedef struct {
    PyObject_HEAD
    Hooks *hooks;
    int32_t fid;
    int active;
    PyObject *receive, *send, *arrived, *out_token;
} LeftOut;

static PyTypeObject LeftOutType;

/* Whether a request is recorded (1) or left out (0) at `rate` < 1, as
 * recording.left_out decides: one inside a recorded call is that call's; one with a
 * traceparent (request_headers': plain, version 00) follows its sampled flag; one
 * without is drawn. -3: an error (as request_headers says it). */
static int sampled_here(Hooks *h, PyObject *traceparent, double rate) {
    Node *top;
    if (peek_top(&h->cc, &top) < 0) return -3;
    if (top && top->epoch == h->epoch && top->scope_id) return 1;
    if (traceparent) {
        const char *flags = PyBytes_AS_STRING(traceparent) + 53;
        int low = flags[1] >= 'a' ? flags[1] - 'a' + 10 : flags[1] - '0';
        return low & 1;
    }
    return rate > 0.0 && rng_next(h) < rate;
}

static PyObject *left_out_begin(Hooks *h, PyObject *receive, PyObject *send) {
    LeftOut *r = PyObject_GC_New(LeftOut, &LeftOutType);
    if (!r) return NULL;
    r->hooks = (Hooks *)Py_NewRef(h);
    r->fid = (int32_t)fid_of(http_out_fid);
    r->active = 1;
    r->receive = Py_NewRef(receive);
    r->send = Py_NewRef(send);
    r->arrived = PyContext_CopyCurrent();
    r->out_token = NULL;
    PyObject_GC_Track(r);
    if (!r->arrived) {
        Py_DECREF(r);
        return NULL;
    }
    /* begun from here: errors are the hooks' (counted), the request goes on */
    if (!(r->out_token = PyContextVar_Set(http_out_var, Py_True))) hook_error(h);
    enter(h, r->fid, NULL, NULL, 0);
    if (PyErr_Occurred()) hook_error(h);
    http_left_out++;
    return (PyObject *)r;
}

static int left_out_live(LeftOut *self) {
    if (self->hooks && self->receive && self->send && self->arrived) return 1;
    PyErr_SetString(PyExc_RuntimeError,
                    "Expected a live LeftOut request (a collection cleared it) - at LeftOut");
    return 0;
}

static PyObject *LeftOut_receive(LeftOut *self, PyObject *Py_UNUSED(ignored)) {
    if (!left_out_live(self)) return NULL;
    return in_arrival(PyObject_CallNoArgs(self->receive), self->arrived, NULL);
}

static PyObject *LeftOut_send(LeftOut *self, PyObject *message) {
    if (!left_out_live(self)) return NULL;
    return in_arrival(PyObject_CallOneArg(self->send, message), self->arrived, NULL);
}

/* end(exc): the left-out call left, the variables reset. Never raises; a second end
 * does nothing. */
static PyObject *LeftOut_end(LeftOut *self, PyObject *exc) {
    if (!self->active) Py_RETURN_NONE;
    if (!end_arg_ok(exc, "LeftOut.end")) return NULL;
    self->active = 0;
    Hooks *h = self->hooks;
    if (!h) Py_RETURN_NONE; /* cleared by a collection: nothing left to end */
    PyObject *et, *ev, *tb; /* whatever was pending stays so */
    PyErr_Fetch(&et, &ev, &tb);
    leave_for(h, self->fid, exc);
    if (PyErr_Occurred()) hook_error(h);
    reset_var(h, http_out_var, &self->out_token, Py_False);
    PyErr_Restore(et, ev, tb);
    Py_RETURN_NONE;
}

static int LeftOut_traverse(LeftOut *self, visitproc visit, void *arg) {
    Py_VISIT(self->hooks);
    Py_VISIT(self->receive);
    Py_VISIT(self->send);
    Py_VISIT(self->arrived);
    Py_VISIT(self->out_token);
    return 0;
}

static int LeftOut_clear(LeftOut *self) {
    Py_CLEAR(self->hooks);
    Py_CLEAR(self->receive);
    Py_CLEAR(self->send);
    Py_CLEAR(self->arrived);
    Py_CLEAR(self->out_token);
    return 0;
}

static void LeftOut_dealloc(LeftOut *self) {
    PyObject_GC_UnTrack(self);
    LeftOut_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *LeftOut_get_active(LeftOut *self, void *c) { return PyBool_FromLong(self->active); }

static PyGetSetDef LeftOut_getset[] = {
    {"active", (getter)LeftOut_get_active, NULL, "Begun and not yet ended.", NULL},
    {NULL}};

static PyMethodDef LeftOut_methods[] = {
    {"receive", (PyCFunction)LeftOut_receive, METH_NOARGS,
     "The server's receive(), run in the context the request arrived in."},
    {"send", (PyCFunction)LeftOut_send, METH_O,
     "The server's send(message), run in the context the request arrived in."},
    {"end", (PyCFunction)LeftOut_end, METH_O,
     "end(exc or None): the request closed; what begin set is undone."},
    {NULL}};

static PyTypeObject LeftOutType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.LeftOut",
    .tp_basicsize = sizeof(LeftOut),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)LeftOut_traverse,
    .tp_clear = (inquiry)LeftOut_clear,
    .tp_dealloc = (destructor)LeftOut_dealloc,
    .tp_getset = LeftOut_getset,
    .tp_methods = LeftOut_methods,
    .tp_doc = "One HTTP request the sampler left out, run as asgi._record runs one (in C).",
};

/* Whether a request's middleware already handles this context (asgi.handled_here): one
 * recorded (recording.current_request set) or left out (recorder.sampled_out). -1: an
 * error. */
static int http_nested(void) {
    PyObject *req, *out;
    if (PyContextVar_Get(http_request_var, Py_None, &req) < 0) return -1;
    int nested = req != Py_None;
    Py_DECREF(req);
    if (nested) return 1;
    if (PyContextVar_Get(http_out_var, Py_False, &out) < 0) return -1;
    nested = PyObject_IsTrue(out);
    Py_DECREF(out);
    return nested;
}

/* http_setup(request_var, path_text, clean_query, status_code, with_headers,
 * error_fields, recorder_vars, rate, fid, sampled_out_var, sampled_out_fid): what
 * HttpRequest and LeftOut set and the Python helpers they call (asgi.py, once). */
static PyObject *Speedups_http_setup(PyObject *Py_UNUSED(m), PyObject *args) {
    PyObject *request_var, *path_text, *clean_query, *status_code, *with_headers,
        *error_fields, *recorder_vars, *rate, *fid, *out_var, *out_fid;
    if (!PyArg_ParseTuple(args, "O!OOOOOO!O!O!O!O!:http_setup", &PyContextVar_Type,
                          &request_var, &path_text,
                          &clean_query, &status_code, &with_headers, &error_fields,
                          &PyDict_Type, &recorder_vars, &PyList_Type, &rate, &PyLong_Type, &fid,
                          &PyContextVar_Type, &out_var, &PyLong_Type, &out_fid))
        return NULL;
    PyObject *fns[5] = {path_text, clean_query, status_code, with_headers, error_fields};
    for (int i = 0; i < 5; i++) {
        if (!PyCallable_Check(fns[i])) {
            PyErr_Format(PyExc_TypeError, "Expected callables, got %.100s - at http_setup",
                         Py_TYPE(fns[i])->tp_name);
            return NULL;
        }
    }
    Py_XSETREF(http_request_var, Py_NewRef(request_var));
    Py_XSETREF(http_path_text, Py_NewRef(path_text));
    Py_XSETREF(http_clean_query, Py_NewRef(clean_query));
    Py_XSETREF(http_status_code, Py_NewRef(status_code));
    Py_XSETREF(http_with_headers, Py_NewRef(with_headers));
    Py_XSETREF(http_error_fields, Py_NewRef(error_fields));
    Py_XSETREF(recorder_dict, Py_NewRef(recorder_vars));
    Py_XSETREF(http_rate, Py_NewRef(rate));
    Py_XSETREF(http_fid, Py_NewRef(fid));
    Py_XSETREF(http_out_var, Py_NewRef(out_var));
    Py_XSETREF(http_out_fid, Py_NewRef(out_fid));
    Py_RETURN_NONE;
}

/* http_begin(scope, receive, send): Hooks.http_request(fid, scope, receive, send, None)
 * of the hooks the installed recorder emits through (its `emit` is theirs), when no
 * outer middleware records this request and the sampler keeps it (always at
 * integrations.request_sampling 1); a LeftOut when the sampler leaves it out; else
 * None: the Python path decides. All asgi.recorded_call asks first. */
static PyObject *Speedups_http_begin(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t n) {
    if (n != 3) {
        PyErr_SetString(PyExc_TypeError, "Expected http_begin(scope, receive, send)");
        return NULL;
    }
    if (!recorder_dict || !PyDict_CheckExact(args[0])) Py_RETURN_NONE;
    PyObject *kind = PyDict_GetItemWithError(args[0], s_type);
    if (!kind || !PyUnicode_CheckExact(kind) || PyUnicode_Compare(kind, s_http) != 0) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *rec = PyDict_GetItemWithError(recorder_dict, s__recorder);
    if (!rec || rec == Py_None) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    if (PyList_GET_SIZE(http_rate) < 1 || !http_out_var) Py_RETURN_NONE;
    double rate = PyFloat_AsDouble(PyList_GET_ITEM(http_rate, 0));
    if (rate == -1.0 && PyErr_Occurred()) { /* not a number: the Python path says so */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *emit = PyObject_GetAttr(rec, s_emit);
    if (!emit) return NULL;
    PyObject *hooks = PyCFunction_Check(emit) ? PyCFunction_GET_SELF(emit) : NULL;
    if (!hooks || !Py_IS_TYPE(hooks, &HooksType)) {
        Py_DECREF(emit);
        Py_RETURN_NONE;
    }
    Py_INCREF(hooks);
    Py_DECREF(emit);
    int nested = http_nested();
    if (nested != 0) {
        Py_DECREF(hooks);
        if (nested < 0) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *traceparent; /* the headers read once: for the sampler and the request */
    int64_t length = request_headers(args[0], &traceparent);
    int sampled = length < -1    ? (int)length
                  : rate >= 1.0 ? 1
                                : sampled_here((Hooks *)hooks, traceparent, rate);
    PyObject *out;
    if (sampled == 1) {
        out = http_request_scanned((Hooks *)hooks, fid_of(http_fid), args[0], args[1], args[2],
                                   Py_None, length, traceparent);
    } else if (sampled == 0) {
        out = left_out_begin((Hooks *)hooks, args[1], args[2]);
    } else { /* -2: the Python path decides; -3: an error */
        out = sampled == -2 ? Py_NewRef(Py_None) : NULL;
    }
    Py_DECREF(hooks);
    return out;
}

static PyObject *Speedups_http_recorded(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a)) {
    return PyLong_FromLongLong(http_recorded);
}

static PyObject *Speedups_http_left_out(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a)) {
    return PyLong_FromLongLong(http_left_out);
}

/* ------------------------------------------------------------------ sqlite3 queries
 *
 * The sqlite3 integration's recording methods (integrations/sqlite.py: the
 * connection's cursor, commit and rollback, the cursor's execute, fetchone,
 * fetchall and close), bound as methods themselves (_speedups.method): no
 * Python frame between the program and sqlite3. An execute of the usual
 * statement - a str that is no transaction statement, on a connection being
 * recorded - is recorded in C: the recording check, the issuing line's walk
 * (db_common._code_places, as walk_known), the statement's and parameters' texts
 * from db_common's caches, and the SELECT waiting for its rows (a PendingQuery,
 * finished in C when its rows are known). Every other case, a cache miss and every
 * error go to the Python functions given by sqlite_setup, so the events are
 * exactly the Python path's (tests/integrations run against both). A query was
 * a dozen interpreted calls. */

static PyObject *sq_parts; /* sqlite_setup's dict: the Python pieces, by name */
static PyObject *sq_cursor, *sq_default_cursor, *sq_default_factory, *sq_recording_cursor,
    *sq_close, *sq_commit, *sq_rollback;
static PyObject *sq_execute, *sq_fetchall, *sq_fetchone, *sq_run, *sq_settle, *sq_on,
    *sq_transition, *sq_sampled_out, *sq_places, *sq_code_place,
    *sq_issuing_frame, *sq_actions, *sq_transaction_action, *sq_statements,
    *sq_statements_under, *sq_redaction_dict, *sq_statement_text, *sq_mode, *sq_shapes,
    *sq_parameters_text, *sq_pending_type, *sq_dropped, *sq_pending_set, *sq_stats,
    *sq_record_query, *sq_failed, *sq_source, *sq_system;
/* db_common._HOUSEKEEPING (the place kept for a code of the pool's) and
 * db_common.HOUSEKEEPING_PLACE (the walk's answer when it meets one first);
 * db_common._RUNNER (the place kept for a code of an event loop's or a server's) and
 * db_common.NO_PLACE (the walk's answer when it meets one first: no line) */
static PyObject *sq_housekeeping, *sq_housekeeping_place, *sq_runner, *sq_no_place;
/* Where db_common.PendingQuery keeps its slots (before, after, rec, rows) in an
 * instance: read and written in place by the C path (0: not known, attributes then) */
static Py_ssize_t pq_before, pq_after, pq_rec, pq_rows;

static Py_ssize_t slot_offset(PyObject *type, const char *name) {
    PyObject *d = PyType_Check(type) ? PyDict_GetItemString(((PyTypeObject *)type)->tp_dict, name)
                                     : NULL;
    if (!d || !Py_IS_TYPE(d, &PyMemberDescr_Type)) return 0;
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    return m->type == T_OBJECT_EX && !(m->flags & READONLY) ? m->offset : 0;
}

static inline PyObject **pq_slot(PyObject *pending, Py_ssize_t offset) {
    return (PyObject **)((char *)pending + offset);
}

/* A PendingQuery's slot (new ref; NULL with AttributeError when unset). */
static PyObject *pq_get(PyObject *pending, Py_ssize_t offset, PyObject *name) {
    if (offset && Py_IS_TYPE(pending, (PyTypeObject *)sq_pending_type)) {
        PyObject *v = *pq_slot(pending, offset);
        if (v) return Py_NewRef(v);
    }
    return PyObject_GetAttr(pending, name);
}

/* Set a PendingQuery's slot to `v` (a new reference is taken). 0, or -1 with the error. */
static int pq_set(PyObject *pending, Py_ssize_t offset, PyObject *name, PyObject *v) {
    if (offset && Py_IS_TYPE(pending, (PyTypeObject *)sq_pending_type)) {
        Py_XSETREF(*pq_slot(pending, offset), Py_NewRef(v));
        return 0;
    }
    return PyObject_SetAttr(pending, name, v);
}
static PyObject *s_es_pending, *s_es_muted, *s_es_database, *s_es_counts, *s_connection,
    *s_in_transaction, *s_description, *s_rowcount, *s_before, *s_after, *s_rows, *s_rec,
    *s_ring, *s_query, *s_recorded, *s_redacted, *s_pipeline, *s_config, *s__recorder,
    *s_envelope, *s_one, *s_es_end, *s_commit, *s_rollback, *empty_tuple, *s_emit;

/* The recorder if `conn`'s statements are recorded now (sqlite._recording), else NULL
 * (an error set or not). Borrowed. */
static PyObject *sq_recording(PyObject *conn) {
    if (PyList_GET_SIZE(sq_on) < 1 || PyObject_IsTrue(PyList_GET_ITEM(sq_on, 0)) != 1)
        return NULL;
    PyObject *muted;
    if (optional_attr(conn, s_es_muted, &muted) < 0) return NULL;
    int off = !muted || PyObject_IsTrue(muted) != 0;
    Py_XDECREF(muted);
    if (off) return NULL;
    PyObject *rec = PyDict_GetItemWithError(recorder_dict, s__recorder);
    if (!rec || rec == Py_None) return NULL;
    PyObject *out;
    if (PyContextVar_Get(sq_sampled_out, Py_False, &out) < 0) return NULL;
    int left = out != Py_False && PyObject_IsTrue(out) != 0;
    Py_DECREF(out);
    return left ? NULL : rec;
}

/* (file, line, module.function) of the program's line that called the cursor's
 * method (db_common.issuing_frame); NULL without an error when the walk found none
 * (issuing_frame then looks further: greenlets). New ref. */
/* The places of code objects seen by the walk, kept on each code object itself (its
 * co_extra slot, as debuggers and JITs keep theirs), in front of db_common._code_places
 * (a dict keyed by id(code), a PyLong made for each frame's lookup): None for a
 * library's code, else (file, module.function); for the program's, the text of the
 * line a walk last stopped at (a query issued again from the same line reads no line
 * table). Per code object, not in a table indexed by its address: a table's
 * collisions made some processes walk the slow way at every query (two of the ~15
 * code objects under a SQLAlchemy statement sharing a slot evicted each other). */
typedef struct {
    PyObject *place;
    int offset;     /* the last instruction a walk stopped at in it (-1: none) */
    PyObject *text; /* and its (file, line, module.function), or NULL */
} CodePlace;

static Py_ssize_t place_extra = -1; /* the co_extra index (-1: none could be had) */

static void place_free(void *extra) { /* the code object is freed (GIL held) */
    CodePlace *cp = (CodePlace *)extra;
    if (!cp) return;
    Py_XDECREF(cp->place);
    Py_XDECREF(cp->text);
    PyMem_Free(cp);
}

#if PY_VERSION_HEX >= 0x030C0000
#define CODE_GET_EXTRA PyUnstable_Code_GetExtra
#define CODE_SET_EXTRA PyUnstable_Code_SetExtra
#define REQUEST_EXTRA PyUnstable_Eval_RequestCodeExtraIndex
#else
#define CODE_GET_EXTRA _PyCode_GetExtra
#define CODE_SET_EXTRA _PyCode_SetExtra
#define REQUEST_EXTRA _PyEval_RequestCodeExtraIndex
#endif

/* The place kept on `code`, or NULL (none kept yet; no exception). */
static inline CodePlace *place_of(PyCodeObject *code) {
    void *extra = NULL;
    if (place_extra < 0 || CODE_GET_EXTRA((PyObject *)code, place_extra, &extra) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return (CodePlace *)extra;
}

static void place_keep(PyCodeObject *code, PyObject *place) {
    if (place_extra < 0) return;
    CodePlace *cp = place_of(code);
    if (!cp) {
        if (!(cp = PyMem_Calloc(1, sizeof(CodePlace)))) return; /* not kept: walked again */
        if (CODE_SET_EXTRA((PyObject *)code, place_extra, cp) < 0) {
            PyErr_Clear();
            PyMem_Free(cp);
            return;
        }
    }
    PyObject *old_place = cp->place, *old_text = cp->text;
    cp->place = Py_NewRef(place);
    cp->offset = -1;
    cp->text = NULL;
    Py_XDECREF(old_text);
    Py_XDECREF(old_place);
}

static PyObject *place_text(PyObject *place, int line) {
    PyObject *number = PyLong_FromLong(line);
    if (!number) return NULL;
    PyObject *out = PyTuple_Pack(3, PyTuple_GET_ITEM(place, 0), number, PyTuple_GET_ITEM(place, 1));
    Py_DECREF(number);
    return out;
}

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
/* CPython 3.11's _PyInterpreterFrame (Include/internal/pycore_frame.h): the walk reads
 * the thread's frames as they are, without making a frame object for each (which
 * PyFrame_GetBack does, and the frame's return then frees). */
typedef struct IFrame {
    PyObject *f_func, *f_globals, *f_builtins, *f_locals;
    PyCodeObject *f_code;
    PyObject *frame_obj;
    struct IFrame *previous;
    _Py_CODEUNIT *prev_instr;
    int stacktop;
    char is_entry;
    char owner;
} IFrame;
#define IFRAME_OWNED_BY_GENERATOR 1

/* (file, line, function) of the first frame of the program's, when every frame up to it
 * is in the cache; else NULL, no exception (the walk below decides). */
static PyObject *sq_place_cached(void) {
    IFrame *f = (IFrame *)PyThreadState_Get()->cframe->current_frame;
    for (; f; f = f->previous) {
        PyCodeObject *code = f->f_code;
        _Py_CODEUNIT *first = (_Py_CODEUNIT *)code->co_code_adaptive;
        if (f->owner != IFRAME_OWNED_BY_GENERATOR && f->prev_instr < first + code->_co_firsttraceable)
            continue; /* incomplete: not a frame yet (PyFrame_GetBack skips it too) */
        CodePlace *cp = place_of(code);
        if (!cp) return NULL;
        PyObject *place = cp->place;
        if (place == Py_None) continue;
        if (place == sq_housekeeping) return Py_NewRef(sq_housekeeping_place);
        if (place == sq_runner) return Py_NewRef(sq_no_place);
        int offset = (int)(f->prev_instr - first) * (int)sizeof(_Py_CODEUNIT);
        if (cp->offset != offset || !cp->text) {
            /* a line table is read from its start: the last line's text is kept */
            PyObject *text = place_text(place, PyCode_Addr2Line(code, offset));
            if (!text) return NULL;
            Py_XSETREF(cp->text, text);
            cp->offset = offset;
        }
        return Py_NewRef(cp->text);
    }
    return NULL;
}
#endif

static uint64_t sq_frame_walks; /* walks that read frame objects (not all codes known) */

static PyObject *sq_place(void) {
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    PyObject *known = sq_place_cached();
    if (known || PyErr_Occurred()) return known;
#endif
    sq_frame_walks++;
    PyFrameObject *f = PyEval_GetFrame(); /* the caller's: the method is this C function */
    Py_XINCREF(f);
    while (f) {
        PyCodeObject *code = PyFrame_GetCode(f);
        PyObject *key = PyLong_FromVoidPtr(code);
        PyObject *entry = key ? PyDict_GetItemWithError(sq_places, key) : NULL;
        Py_XDECREF(key);
        PyObject *place = NULL;
        if (entry && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) == 2 &&
            PyTuple_GET_ITEM(entry, 0) == (PyObject *)code) {
            place = Py_NewRef(PyTuple_GET_ITEM(entry, 1));
        } else if (!PyErr_Occurred()) {
            place = PyObject_CallFunctionObjArgs(sq_code_place, (PyObject *)code, (PyObject *)f,
                                                 NULL);
        }
        if (place && (place == Py_None || (PyTuple_CheckExact(place) && PyTuple_GET_SIZE(place) == 2)))
            place_keep(code, place);
        Py_DECREF(code);
        if (!place) { Py_DECREF(f); return NULL; }
        if (place == sq_housekeeping) {
            Py_DECREF(place);
            Py_DECREF(f);
            return Py_NewRef(sq_housekeeping_place);
        }
        if (place == sq_runner) {
            Py_DECREF(place);
            Py_DECREF(f);
            return Py_NewRef(sq_no_place);
        }
        if (PyTuple_CheckExact(place) && PyTuple_GET_SIZE(place) == 2) {
            PyObject *out = place_text(place, PyFrame_GetLineNumber(f));
            Py_DECREF(place);
            Py_DECREF(f);
            return out;
        }
        Py_DECREF(place); /* a library's frame */
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    return NULL;
}

/* db_common.statement_text(sql) from its cache; Python's on a miss. New ref. */
static PyObject *sq_statement(PyObject *sql) {
    PyObject *pipeline = PyDict_GetItemWithError(sq_redaction_dict, s_pipeline);
    PyObject *rules = pipeline ? PyObject_GetAttr(pipeline, s_config) : NULL;
    if (rules && PyList_GET_SIZE(sq_statements_under) > 0 &&
        PyList_GET_ITEM(sq_statements_under, 0) == rules) {
        PyObject *text = PyDict_GetItemWithError(sq_statements, sql);
        if (text) {
            Py_DECREF(rules);
            return Py_NewRef(text);
        }
    }
    Py_XDECREF(rules);
    if (PyErr_Occurred()) return NULL;
    return PyObject_CallOneArg(sq_statement_text, sql);
}

/* db_common.parameters_text(params) for a tuple or list while redacted, from its
 * shapes; Python's otherwise. New ref. */
static PyObject *sq_parameters(PyObject *params) {
    int is_tuple = PyTuple_CheckExact(params);
    if ((is_tuple || PyList_CheckExact(params)) && PyList_GET_SIZE(sq_mode) > 0 &&
        PyUnicode_CheckExact(PyList_GET_ITEM(sq_mode, 0)) &&
        PyUnicode_Compare(PyList_GET_ITEM(sq_mode, 0), s_redacted) == 0) {
        PyObject *size = PyLong_FromSsize_t(Py_SIZE(params));
        PyObject *key = size ? PyTuple_Pack(2, size, is_tuple ? Py_True : Py_False) : NULL;
        PyObject *text = key ? PyDict_GetItemWithError(sq_shapes, key) : NULL;
        Py_XDECREF(size);
        Py_XDECREF(key);
        if (text) return Py_NewRef(text);
        if (PyErr_Occurred()) return NULL;
    }
    return PyObject_CallOneArg(sq_parameters_text, params);
}

/* PendingQuery.finish in C: the query recorded with the rows given (once). 0, or -1
 * with the error (the caller hands it to db_common.failed). */
static int sq_finish(PyObject *pending) {
    PyObject *before = pq_get(pending, pq_before, s_before);
    if (!before) return -1;
    if (before == Py_None) { Py_DECREF(before); return 0; }
    int ok = -1;
    PyObject *rows = NULL, *after = NULL, *rec = NULL, *ring = NULL, *event = NULL;
    if (pq_set(pending, pq_before, s_before, Py_None) < 0 || PySet_Discard(sq_pending_set, pending) < 0)
        goto done;
    if (!(rows = pq_get(pending, pq_rows, s_rows)) || !(after = pq_get(pending, pq_after, s_after)) ||
        !(rec = pq_get(pending, pq_rec, s_rec)) || !(ring = PyObject_GetAttr(rec, s_ring)))
        goto done;
    if (!PyTuple_CheckExact(before) || !PyTuple_CheckExact(after)) {
        PyErr_SetString(PyExc_TypeError, "Expected a PendingQuery's before and after as tuples");
        goto done;
    }
    Py_ssize_t nb = PyTuple_GET_SIZE(before), na = PyTuple_GET_SIZE(after);
    /* written whole, or (a part C does not encode, another ring) as the tuple */
    if ((Py_IS_TYPE(ring, &RingType) ? ring_put_joined((Ring *)ring, before, rows, after) : -1) < 0) {
        if (!(event = PyTuple_New(nb + 1 + na))) goto done;
        for (Py_ssize_t i = 0; i < nb; i++) PyTuple_SET_ITEM(event, i, Py_NewRef(PyTuple_GET_ITEM(before, i)));
        PyTuple_SET_ITEM(event, nb, Py_NewRef(rows));
        for (Py_ssize_t i = 0; i < na; i++)
            PyTuple_SET_ITEM(event, nb + 1 + i, Py_NewRef(PyTuple_GET_ITEM(after, i)));
        if (Py_IS_TYPE(ring, &RingType)) {
            ring_put((Ring *)ring, event);
        } else {
            PyObject *r = PyObject_CallMethod(ring, "append", "O", event);
            if (!r) goto done;
            Py_DECREF(r);
        }
    }
    PyObject *count = PyDict_GetItemWithError(sq_stats, s_recorded);
    PyObject *more = count ? PyNumber_Add(count, s_one) : NULL;
    if (!more || PyDict_SetItem(sq_stats, s_recorded, more) < 0) { Py_XDECREF(more); goto done; }
    Py_DECREF(more);
    ok = 0;
done:
    Py_DECREF(before);
    Py_XDECREF(rows); Py_XDECREF(after); Py_XDECREF(rec); Py_XDECREF(ring); Py_XDECREF(event);
    return ok;
}

/* An error inside recording: db_common.failed(exc), never raised. */
static void sq_swallow(void) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_NormalizeException(&et, &ev, &tb);
    PyObject *r = ev ? PyObject_CallOneArg(sq_failed, ev) : NULL;
    if (!r) PyErr_Clear();
    Py_XDECREF(r);
    Py_XDECREF(et); Py_XDECREF(ev); Py_XDECREF(tb);
}

/* The SELECT waits for its rows (db_common.start_query): 0, or -1 with the error. */
static int sq_start(PyObject *rec, PyObject *cursor, PyObject *place, int64_t started,
                    PyObject *database, PyObject *sql, PyObject *params) {
    int64_t duration = mono_ns() - started;
    int ok = -1;
    PyObject *text = sq_statement(sql), *shown = text ? sq_parameters(params) : NULL;
    PyObject *pending = NULL, *env = NULL, *before = NULL, *after = NULL, *dur = NULL;
    if (!shown) goto done;
    if (!(pending = PyObject_CallFunctionObjArgs(sq_pending_type, cursor, sq_dropped, NULL))) goto done;
    if (!(env = PyObject_CallMethodOneArg(rec, s_envelope, s_query))) goto done;
    if (!PyTuple_CheckExact(env) || !(dur = PyLong_FromLongLong(duration))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Expected an envelope tuple");
        goto done;
    }
    Py_ssize_t ne = PyTuple_GET_SIZE(env);
    if (!(before = PyTuple_New(ne + 5))) goto done;
    for (Py_ssize_t i = 0; i < ne; i++) PyTuple_SET_ITEM(before, i, Py_NewRef(PyTuple_GET_ITEM(env, i)));
    PyObject *rest[5] = {sq_system, database, text, shown, dur};
    for (int i = 0; i < 5; i++) PyTuple_SET_ITEM(before, ne + i, Py_NewRef(rest[i]));
    after = PyTuple_Pack(6, PyTuple_GET_ITEM(place, 0), PyTuple_GET_ITEM(place, 1),
                         PyTuple_GET_ITEM(place, 2), Py_None, sq_source, s_zero);
    if (!after || pq_set(pending, pq_before, s_before, before) < 0 ||
        pq_set(pending, pq_after, s_after, after) < 0 || pq_set(pending, pq_rec, s_rec, rec) < 0 ||
        pq_set(pending, pq_rows, s_rows, s_zero) < 0 || PySet_Add(sq_pending_set, pending) < 0 ||
        PyObject_SetAttr(cursor, s_es_pending, pending) < 0)
        goto done;
    ok = 0;
done:
    Py_XDECREF(text); Py_XDECREF(shown); Py_XDECREF(pending); Py_XDECREF(env);
    Py_XDECREF(before); Py_XDECREF(after); Py_XDECREF(dur);
    return ok;
}

/* record_query(rec, place, started, source, system, database, sql, params, False, rows, error) */
static void sq_record(PyObject *rec, PyObject *place, int64_t started, PyObject *database,
                      PyObject *sql, PyObject *params, PyObject *rows, PyObject *error) {
    PyObject *t0 = PyLong_FromLongLong(started);
    PyObject *r = t0 ? PyObject_CallFunctionObjArgs(sq_record_query, rec, place, t0, sq_source,
                                                    sq_system, database, sql, params, Py_False,
                                                    rows, error, NULL)
                     : NULL;
    Py_XDECREF(t0);
    if (!r) sq_swallow();
    Py_XDECREF(r);
}

static inline PyObject *in_transaction(PyObject *conn) { /* new ref; None when it fails */
    PyObject *v = PyObject_GetAttr(conn, s_in_transaction);
    if (!v) { PyErr_Clear(); v = Py_NewRef(Py_None); }
    return v;
}

/* The transaction a statement began or committed (sqlite._transition), recorded when its
 * state changed from ``was_in``; never raises (a failure is swallowed, counted). */
static void sq_transitioned(PyObject *rec, PyObject *conn, PyObject *database, PyObject *place,
                            int64_t started, PyObject *was_in) {
    if (!place || !database) return;
    PyObject *now_in = in_transaction(conn);
    if ((was_in == Py_False && PyObject_IsTrue(now_in) == 1) ||
        (was_in != Py_None && PyObject_IsTrue(was_in) == 1 && now_in == Py_False)) {
        PyObject *t0 = PyLong_FromLongLong(started);
        PyObject *r = t0 ? PyObject_CallFunctionObjArgs(sq_transition, rec, conn, database, place, t0,
                                                        was_in, now_in, NULL) : NULL;
        if (!r) sq_swallow();
        Py_XDECREF(r);
        Py_XDECREF(t0);
    }
    Py_DECREF(now_in);
}

/* sqlite_execute(cursor, sql, params): the recording cursor's execute (sqlite._CursorMixin). */
static PyObject *Speedups_sqlite_execute(PyObject *m, PyObject *const *args, size_t nargsf,
                                         PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (!sq_parts) {
        PyErr_SetString(PyExc_TypeError, "Expected sqlite_setup before sqlite_execute");
        return NULL;
    }
    if ((n != 2 && n != 3) || (kwnames && PyTuple_GET_SIZE(kwnames))) /* sqlite3's own error */
        return PyObject_Vectorcall(sq_execute, args, n, kwnames);
    PyObject *cursor = args[0], *sql = args[1], *params = n == 3 ? args[2] : empty_tuple;
    PyObject *waiting = PyObject_GetAttr(cursor, s_es_pending);
    if (!waiting) return NULL;
    if (waiting != Py_None) { /* its last query's rows are all given: recorded first */
        PyObject *r = PyObject_CallOneArg(sq_settle, cursor);
        Py_XDECREF(r);
        if (!r) { Py_DECREF(waiting); return NULL; }
    }
    Py_DECREF(waiting);
    PyObject *conn = PyObject_GetAttr(cursor, s_connection);
    if (!conn) return NULL;
    PyObject *rec = sq_recording(conn);
    PyObject *plain[3] = {cursor, sql, params};
    if (!rec) {
        Py_DECREF(conn);
        if (PyErr_Occurred()) return NULL; /* as the Python path: its getattr raised */
        return PyObject_Vectorcall(sq_execute, plain, 3, NULL);
    }
    Py_INCREF(rec);
    PyObject *action = NULL;
    if (PyUnicode_CheckExact(sql)) {
        action = PyDict_GetItemWithError(sq_actions, sql);
        if (action) Py_INCREF(action);
        else if (!PyErr_Occurred()) action = PyObject_CallOneArg(sq_transaction_action, sql);
    }
    if (!action || action != Py_None) { /* a transaction statement, SQL not a str: Python's */
        Py_XDECREF(action);
        PyErr_Clear();
        PyObject *r = PyObject_CallFunction(sq_run, "OOOOOOOi", cursor, conn, rec, sq_execute,
                                            sql, params, Py_False, 2); /* the walk's depth */
        Py_DECREF(conn);
        Py_DECREF(rec);
        return r;
    }
    Py_DECREF(action);
    PyObject *place = sq_place();
    if (!place) {
        if (PyErr_Occurred()) sq_swallow();
        place = PyObject_CallFunction(sq_issuing_frame, "i", 1);
        if (!place) { sq_swallow(); place = Py_BuildValue("(OiO)", Py_None, 0, Py_None); }
    }
    if (place == sq_housekeeping_place) { /* the pool's own statement: not recorded */
        Py_DECREF(place);
        Py_DECREF(conn);
        Py_DECREF(rec);
        return PyObject_Vectorcall(sq_execute, plain, 3, NULL);
    }
    PyObject *database = PyObject_GetAttr(conn, s_es_database);
    if (!database) { PyErr_Clear(); database = Py_NewRef(Py_None); }
    int64_t started = mono_ns();
    PyObject *was_in = in_transaction(conn);
    PyObject *result = PyObject_Vectorcall(sq_execute, plain, 3, NULL);
    if (!result) { /* recorded with its error, then raised as it was */
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        if (tb) PyException_SetTraceback(ev, tb);
        /* a failed change still began its transaction (sqlite3 begins before it) */
        sq_transitioned(rec, conn, database, place, started, was_in);
        if (PyErr_Occurred()) PyErr_Clear();
        PyObject *no_rows = PyLong_FromLong(-1);
        if (place && no_rows) sq_record(rec, place, started, database, sql, params, no_rows, ev ? ev : Py_None);
        Py_XDECREF(no_rows);
        PyErr_Restore(et, ev, tb);
        goto out;
    }
    sq_transitioned(rec, conn, database, place, started, was_in);
    if (PyErr_Occurred()) PyErr_Clear();
    PyObject *counts = PyObject_GetAttr(cursor, s_es_counts);
    PyObject *description = counts && PyObject_IsTrue(counts) == 1 ? PyObject_GetAttr(cursor, s_description) : NULL;
    if (PyErr_Occurred()) sq_swallow();
    if (description && description != Py_None) {
        if (sq_start(rec, cursor, place, started, database, sql, params) < 0) {
            sq_swallow(); /* then recorded now, rows unknown */
            PyObject *no_rows = PyLong_FromLong(-1);
            if (no_rows) sq_record(rec, place, started, database, sql, params, no_rows, Py_None);
            Py_XDECREF(no_rows);
        }
    } else {
        PyObject *rows = PyObject_GetAttr(cursor, s_rowcount);
        if (!rows) { sq_swallow(); rows = PyLong_FromLong(-1); }
        if (rows) sq_record(rec, place, started, database, sql, params, rows, Py_None);
        Py_XDECREF(rows);
    }
    Py_XDECREF(counts);
    Py_XDECREF(description);
out:
    Py_DECREF(was_in);
    Py_DECREF(database);
    Py_DECREF(place);
    Py_DECREF(conn);
    Py_DECREF(rec);
    return result;
}

/* After a fetch: its rows added to the query waiting on the cursor; `done` (the fetch
 * gave all there were): recorded. Never raises (db_common.failed). */
static void sq_fetched(PyObject *cursor, Py_ssize_t got, int done) {
    PyObject *pending = PyObject_GetAttr(cursor, s_es_pending);
    if (pending && pending != Py_None) {
        PyObject *rows = pq_get(pending, pq_rows, s_rows);
        PyObject *add = PyLong_FromSsize_t(got);
        PyObject *sum = rows && add ? PyNumber_Add(rows, add) : NULL;
        if (sum && pq_set(pending, pq_rows, s_rows, sum) == 0 && done &&
            PyObject_SetAttr(cursor, s_es_pending, Py_None) == 0)
            sq_finish(pending);
        Py_XDECREF(rows); Py_XDECREF(add); Py_XDECREF(sum);
    }
    Py_XDECREF(pending);
    if (PyErr_Occurred()) sq_swallow();
}

/* sqlite_fetchall(cursor, *args): sqlite._Counting.fetchall. */
static PyObject *Speedups_sqlite_fetchall(PyObject *m, PyObject *const *args, size_t nargsf,
                                          PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n < 1 || !sq_parts) {
        PyErr_SetString(PyExc_TypeError, "Expected sqlite_fetchall(cursor, *args) after sqlite_setup");
        return NULL;
    }
    PyObject *rows = PyObject_Vectorcall(sq_fetchall, args, n, kwnames);
    if (!rows) return NULL;
    Py_ssize_t got = PyList_CheckExact(rows) ? PyList_GET_SIZE(rows) : PyObject_Length(rows);
    if (got < 0) { PyErr_Clear(); got = 0; }
    sq_fetched(args[0], got, 1);
    return rows;
}

/* sqlite_fetchone(cursor): sqlite._Counting.fetchone. */
static PyObject *Speedups_sqlite_fetchone(PyObject *m, PyObject *const *args, size_t nargsf,
                                          PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (!sq_parts) {
        PyErr_SetString(PyExc_TypeError, "Expected sqlite_setup before sqlite_fetchone");
        return NULL;
    }
    if (n != 1 || (kwnames && PyTuple_GET_SIZE(kwnames))) /* sqlite3's own error */
        return PyObject_Vectorcall(sq_fetchone, args, n, kwnames);
    PyObject *cursor = args[0];
    PyObject *row = PyObject_CallOneArg(sq_fetchone, cursor);
    if (!row) return NULL;
    sq_fetched(cursor, row == Py_None ? 0 : 1, row == Py_None);
    return row;
}

/* sqlite_cursor(conn, factory=sqlite3.Cursor): the recording connection's cursor(). */
static PyObject *Speedups_sqlite_cursor(PyObject *m, PyObject *args, PyObject *kw) {
    static char *names[] = {"", "factory", NULL};
    PyObject *conn, *factory = NULL;
    if (!sq_parts) {
        PyErr_SetString(PyExc_TypeError, "Expected sqlite_setup before sqlite_cursor");
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) < 1 || PyTuple_GET_SIZE(args) > 2 ||
        (kw && (PyDict_GET_SIZE(kw) > 1 || (PyDict_GET_SIZE(kw) == 1 && PyTuple_GET_SIZE(args) == 2)))) {
        return PyObject_Call(sq_cursor, args, kw); /* sqlite3's own error */
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:cursor", names, &conn, &factory)) return NULL;
    PyObject *made = !factory || factory == (PyObject *)sq_default_factory
                         ? Py_NewRef(sq_default_cursor)
                         : PyObject_CallOneArg(sq_recording_cursor, factory);
    if (!made) return NULL;
    PyObject *out = PyObject_CallFunctionObjArgs(sq_cursor, conn, made, NULL);
    Py_DECREF(made);
    return out;
}

/* sqlite_close(cursor, *args): a counting cursor's close(): its query recorded first. */
static PyObject *Speedups_sqlite_close(PyObject *m, PyObject *const *args, Py_ssize_t n) {
    if (n < 1 || !sq_parts) {
        PyErr_SetString(PyExc_TypeError, "Expected sqlite_close(cursor, *args) after sqlite_setup");
        return NULL;
    }
    PyObject *waiting = PyObject_GetAttr(args[0], s_es_pending);
    if (!waiting) return NULL;
    if (waiting != Py_None) {
        PyObject *r = PyObject_CallOneArg(sq_settle, args[0]);
        Py_XDECREF(r);
        if (!r) { Py_DECREF(waiting); return NULL; }
    }
    Py_DECREF(waiting);
    return PyObject_Vectorcall(sq_close, args, n, NULL);
}

/* A recording connection's commit() or rollback(): sqlite3's own when no transaction is
 * open (a pool's reset, mostly); else _es_end, which records it. */
static PyObject *sq_end(PyObject *const *args, Py_ssize_t n, PyObject *action, PyObject *method) {
    if (n != 1 || !sq_parts) return PyObject_Vectorcall(method, args, n, NULL); /* its error */
    PyObject *open = PyObject_GetAttr(args[0], s_in_transaction);
    int ends = open ? PyObject_IsTrue(open) : 0;
    Py_XDECREF(open);
    if (ends <= 0) {
        PyErr_Clear(); /* a closed connection: the method says so */
        return PyObject_Vectorcall(method, args, 1, NULL);
    }
    return PyObject_CallMethodObjArgs(args[0], s_es_end, action, method, NULL);
}

static PyObject *Speedups_sqlite_commit(PyObject *m, PyObject *const *args, Py_ssize_t n) {
    return sq_end(args, n, s_commit, sq_commit);
}

static PyObject *Speedups_sqlite_rollback(PyObject *m, PyObject *const *args, Py_ssize_t n) {
    return sq_end(args, n, s_rollback, sq_rollback);
}

/* method(fn): fn as a class's method, called as the interpreter calls a built-in type's
 * own: a method descriptor, so `obj.m(...)` is fn(obj, ...) with no bound method made and
 * its call site specialises as for sqlite3's methods (an instancemethod made a bound
 * method at each call, and left the site generic: a type lookup each time). `obj.m`
 * alone is a bound method of fn, `Class.m` is fn itself (as an instancemethod gave). */
typedef struct {
    PyObject_HEAD
    PyObject *fn;
    vectorcallfunc vectorcall;
} Method;

static PyObject *Method_vectorcall(Method *self, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames) {
    return PyObject_Vectorcall(self->fn, args, nargsf, kwnames);
}

static PyObject *Method_get(Method *self, PyObject *obj, PyObject *type) {
    if (!obj) return Py_NewRef(self->fn);
    return PyMethod_New(self->fn, obj);
}

static int Method_traverse(Method *self, visitproc visit, void *arg) {
    Py_VISIT(self->fn);
    return 0;
}

static int Method_clear(Method *self) {
    Py_CLEAR(self->fn);
    return 0;
}

static void Method_dealloc(Method *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->fn);
    PyObject_GC_Del(self);
}

static PyTypeObject MethodType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.method",
    .tp_basicsize = sizeof(Method),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_METHOD_DESCRIPTOR |
                Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Method, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = (descrgetfunc)Method_get,
    .tp_traverse = (traverseproc)Method_traverse,
    .tp_clear = (inquiry)Method_clear,
    .tp_dealloc = (destructor)Method_dealloc,
    .tp_doc = "A C function as a class's method (see method()).",
};

static PyObject *Speedups_method(PyObject *m, PyObject *fn) {
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "Expected a callable, got %.100s - at method", Py_TYPE(fn)->tp_name);
        return NULL;
    }
    Method *self = PyObject_GC_New(Method, &MethodType);
    if (!self) return NULL;
    self->fn = Py_NewRef(fn);
    self->vectorcall = (vectorcallfunc)Method_vectorcall;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* sqlite_setup(parts): the Python pieces sqlite_execute and the fetches use (sqlite.py). */
static PyObject *Speedups_sqlite_setup(PyObject *m, PyObject *parts) {
    if (!PyDict_CheckExact(parts)) {
        PyErr_SetString(PyExc_TypeError, "Expected sqlite_setup(dict of parts)");
        return NULL;
    }
    struct { const char *name; PyObject **slot; } want[] = {
        {"execute", &sq_execute}, {"fetchall", &sq_fetchall}, {"fetchone", &sq_fetchone},
        {"run", &sq_run}, {"settle", &sq_settle}, {"on", &sq_on}, {"transition", &sq_transition},
        {"cursor", &sq_cursor}, {"default_cursor", &sq_default_cursor},
        {"default_factory", &sq_default_factory}, {"recording_cursor", &sq_recording_cursor},
        {"close", &sq_close}, {"commit", &sq_commit}, {"rollback", &sq_rollback},
        {"recorder_dict", &recorder_dict}, {"sampled_out", &sq_sampled_out},
        {"places", &sq_places}, {"code_place", &sq_code_place},
        {"issuing_frame", &sq_issuing_frame}, {"actions", &sq_actions},
        {"transaction_action", &sq_transaction_action}, {"statements", &sq_statements},
        {"statements_under", &sq_statements_under}, {"redaction_dict", &sq_redaction_dict},
        {"statement_text", &sq_statement_text}, {"mode", &sq_mode}, {"shapes", &sq_shapes},
        {"parameters_text", &sq_parameters_text}, {"pending_type", &sq_pending_type},
        {"dropped", &sq_dropped}, {"pending_set", &sq_pending_set}, {"stats", &sq_stats},
        {"record_query", &sq_record_query}, {"failed", &sq_failed}, {"source", &sq_source},
        {"system", &sq_system}, {"housekeeping", &sq_housekeeping},
        {"housekeeping_place", &sq_housekeeping_place}, {"runner", &sq_runner},
        {"no_place", &sq_no_place}};
    size_t count = sizeof(want) / sizeof(want[0]);
    for (size_t i = 0; i < count; i++) {
        PyObject *v = PyDict_GetItemString(parts, want[i].name);
        if (!v) {
            PyErr_Format(PyExc_KeyError, "Expected the part %s - at sqlite_setup", want[i].name);
            return NULL;
        }
    }
    PyObject *on = PyDict_GetItemString(parts, "on"), *mode = PyDict_GetItemString(parts, "mode"),
             *under = PyDict_GetItemString(parts, "statements_under");
    if (!PyList_CheckExact(on) || !PyList_CheckExact(mode) || !PyList_CheckExact(under) ||
        !PyDict_CheckExact(PyDict_GetItemString(parts, "places")) ||
        !PyDict_CheckExact(PyDict_GetItemString(parts, "actions")) ||
        !PyDict_CheckExact(PyDict_GetItemString(parts, "statements")) ||
        !PyDict_CheckExact(PyDict_GetItemString(parts, "shapes")) ||
        !PyDict_CheckExact(PyDict_GetItemString(parts, "stats")) ||
        !PyDict_CheckExact(PyDict_GetItemString(parts, "recorder_dict")) ||
        !PyDict_CheckExact(PyDict_GetItemString(parts, "redaction_dict")) ||
        !PySet_CheckExact(PyDict_GetItemString(parts, "pending_set")) ||
        !PyObject_TypeCheck(PyDict_GetItemString(parts, "sampled_out"), &PyContextVar_Type)) {
        PyErr_SetString(PyExc_TypeError, "Expected sqlite_setup's lists, dicts, set and context variable");
        return NULL;
    }
    for (size_t i = 0; i < count; i++)
        Py_XSETREF(*want[i].slot, Py_NewRef(PyDict_GetItemString(parts, want[i].name)));
    pq_before = slot_offset(sq_pending_type, "before");
    pq_after = slot_offset(sq_pending_type, "after");
    pq_rec = slot_offset(sq_pending_type, "rec");
    pq_rows = slot_offset(sq_pending_type, "rows");
    if (!pq_before || !pq_after || !pq_rec || !pq_rows) pq_before = pq_after = pq_rec = pq_rows = 0;
    Py_XSETREF(sq_parts, Py_NewRef(parts));
    Py_RETURN_NONE;
}

#define FAST(name) (PyCFunction)(void (*)(void))name, METH_FASTCALL
#define VARKW(name) (PyCFunction)(void (*)(void))name, METH_VARARGS | METH_KEYWORDS
static PyMethodDef Hooks_methods[] = {
    {"call", (PyCFunction)Hooks_call, METH_O, "Record entry; returns the exit context manager."},
    {"gen_call", (PyCFunction)Hooks_gen_call, METH_O, NULL},
    {"call_args", FAST(Hooks_call_args), NULL},
    {"gen_call_args", FAST(Hooks_gen_call_args), NULL},
    {"ret", FAST(Hooks_ret), "Note the result; returns it unchanged."},
    {"yielding", FAST(Hooks_yielding), NULL},
    {"yielding_from", FAST(Hooks_yielding), NULL},
    {"awaiting", FAST(Hooks_awaiting), NULL},
    {"resumed", FAST(Hooks_resumed), NULL},
    {"thrown", FAST(Hooks_thrown), NULL},
    {"caught", FAST(Hooks_caught), NULL},
    {"async_iter", FAST(Hooks_async_iter), "async for over a proxy recording each __anext__."},
    {"async_with", FAST(Hooks_async_with), "async with over a proxy recording enter/exit."},
    {"note_error", (PyCFunction)Hooks_note_error, METH_O, "Count a swallowed hook error."},
    {"attr", FAST(Hooks_attr), NULL},
    {"update_function", FAST(Hooks_update_function), NULL},
    {"value_text", (PyCFunction)Hooks_value_text, METH_O, "What ret(fid, v) records for v."},
    {"args_text", FAST(Hooks_args_text), "What call_args(fid, names, values) records."},
    {"register", VARKW(Hooks_register), "hooks.register(...): a function's id."},
    {"set_level", VARKW(Hooks_set_level), "hooks.set_level(fid, level, sampling=None)."},
    {"function", VARKW(Hooks_function), "hooks.function(fid) -> FunctionInfo."},
    {"bind", (PyCFunction)Hooks_bind, METH_O, NULL},
    {"current_call_id", (PyCFunction)Hooks_current_call_id, METH_NOARGS, NULL},
    {"emit", (PyCFunction)(void (*)(void))Hooks_emit, METH_FASTCALL,
     "Recorder.emit(tag, *fields) of the bound recorder, in C; the event's id."},
    {"envelope", (PyCFunction)Hooks_envelope, METH_O,
     "Recorder.envelope(tag) of the bound recorder, in C."},
    {"current_correlation_id", (PyCFunction)Hooks_current_correlation_id, METH_NOARGS, NULL},
    {"stats", (PyCFunction)Hooks_stats, METH_NOARGS, NULL},
    {"http_request", FAST(Hooks_http_request),
     "http_request(fid, scope, receive, send, arrived): an HttpRequest begun, or None "
     "(the Python path records this one); arrived None: a copy of the current context."},
    {NULL}};

static PyObject *Hooks_get_accelerated(Hooks *self, void *c) { Py_RETURN_TRUE; }
static PyGetSetDef Hooks_getset[] = {
    {"accelerated", (getter)Hooks_get_accelerated, NULL, NULL, NULL}, {NULL}};

static PyTypeObject HooksType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elixirscope.capture._speedups.Hooks",
    .tp_basicsize = sizeof(Hooks),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Hooks_init,
    .tp_traverse = (traverseproc)Hooks_traverse,
    .tp_clear = (inquiry)Hooks_clear,
    .tp_dealloc = (destructor)Hooks_dealloc,
    .tp_methods = Hooks_methods,
    .tp_getset = Hooks_getset,
    .tp_doc = "The __elixirscope__ hooks (C); see hooks.py for the contract.",
};

/* ------------------------------------------------------------------ stack walks */

/* The database integrations' issuing line (integrations.db_common.issuing_frame):
 * from `frame` outwards, the first frame whose code `places` does not know as a
 * library's. `places` maps id(code) -> (code, None) for a library's code and
 * (code, place) for the program's. Returns (frame, entry or None), or None at the
 * end of the stack; the caller judges an unknown frame and walks on from its f_back.
 * A query's walk passes the same library frames every time: in C each costs a
 * dict lookup, not an interpreted loop step. */
static PyObject *Speedups_sqlite_frame_walks(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a)) {
    return PyLong_FromUnsignedLongLong(sq_frame_walks);
}

static PyObject *Speedups_walk_known(PyObject *m, PyObject *args) {
    PyObject *frame, *places;
    if (!PyArg_ParseTuple(args, "OO!:walk_known", &frame, &PyDict_Type, &places)) return NULL;
    if (frame == Py_None) Py_RETURN_NONE;
    if (!PyFrame_Check(frame)) {
        PyErr_Format(PyExc_TypeError, "Expected a frame, got `%s` - at `walk_known(frame)`",
                     Py_TYPE(frame)->tp_name);
        return NULL;
    }
    Py_INCREF(frame);
    for (;;) {
        PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)frame);
        PyObject *key = PyLong_FromVoidPtr(code);
        if (!key) { Py_DECREF(code); Py_DECREF(frame); return NULL; }
        PyObject *entry = PyDict_GetItemWithError(places, key);
        Py_DECREF(key);
        if (!entry && PyErr_Occurred()) { Py_DECREF(code); Py_DECREF(frame); return NULL; }
        int library = entry && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) == 2 &&
                      PyTuple_GET_ITEM(entry, 0) == (PyObject *)code &&
                      PyTuple_GET_ITEM(entry, 1) == Py_None;
        Py_DECREF(code);
        if (!library) return Py_BuildValue("(NO)", frame, entry ? entry : Py_None);
        PyFrameObject *back = PyFrame_GetBack((PyFrameObject *)frame);
        Py_DECREF(frame);
        if (!back) Py_RETURN_NONE;
        frame = (PyObject *)back;
    }
}

/* chain_numbers(P, lo, hi, top, digits): the n in lo..hi whose chain id (chain_text:
 * mix64(n ^ P) in hex, then P) has `top` as its first `digits` hex digits (0..16); how
 * the store finds a shortened chain id (store/chain_keys.py). */
static PyObject *Speedups_chain_numbers(PyObject *Py_UNUSED(m), PyObject *args) {
    unsigned long long process, lo, hi, top;
    int digits;
    if (!PyArg_ParseTuple(args, "KKKKi:chain_numbers", &process, &lo, &hi, &top, &digits))
        return NULL;
    if (digits < 0 || digits > 16) {
        PyErr_Format(PyExc_ValueError, "Expected digits between 0 and 16, got %d - at chain_numbers", digits);
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (!out || hi < lo) return out;
    int shift = 64 - 4 * digits;
    for (uint64_t n = lo;; n++) {
        uint64_t z = mix64(n ^ (uint64_t)process);
        if (digits == 0 || (z >> shift) == (uint64_t)top) {
            PyObject *v = PyLong_FromUnsignedLongLong(n);
            if (!v || PyList_Append(out, v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(v);
        }
        if (n == hi) break;
    }
    return out;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef module_methods[] = {
    {"chain_numbers", (PyCFunction)Speedups_chain_numbers, METH_VARARGS,
     "chain_numbers(P, lo, hi, top, digits): the chain numbers whose id starts with top."},
    {"set_redaction", (PyCFunction)Speedups_set_redaction, METH_O,
     "What C leaves to Python for redaction (redaction.c_flags())."},
    {"redaction_flags", (PyCFunction)Speedups_redaction_flags, METH_NOARGS,
     "The flags set_redaction last set."},
    {"secret_trigger", (PyCFunction)Speedups_secret_trigger, METH_O,
     "True where a built-in redaction processor could find something, else None."},
    {"http_setup", (PyCFunction)Speedups_http_setup, METH_VARARGS,
     "http_setup(request_var, path_text, clean_query, status_code, with_headers, "
     "error_fields, recorder_dict, rate, fid): what Hooks.http_request's requests set and "
     "call, and what http_begin reads."},
    {"sqlite_setup", (PyCFunction)Speedups_sqlite_setup, METH_O,
     "sqlite_setup(parts): the Python pieces the sqlite3 functions below use (sqlite.py)."},
    {"sqlite_execute", (PyCFunction)(void (*)(void))Speedups_sqlite_execute,
     METH_FASTCALL | METH_KEYWORDS,
     "sqlite_execute(cursor, sql, params): a recording cursor's execute."},
    {"sqlite_fetchall", (PyCFunction)(void (*)(void))Speedups_sqlite_fetchall,
     METH_FASTCALL | METH_KEYWORDS,
     "sqlite_fetchall(cursor, *args): a counting cursor's fetchall."},
    {"sqlite_fetchone", (PyCFunction)(void (*)(void))Speedups_sqlite_fetchone,
     METH_FASTCALL | METH_KEYWORDS,
     "sqlite_fetchone(cursor): a counting cursor's fetchone."},
    {"sqlite_cursor", (PyCFunction)(void (*)(void))Speedups_sqlite_cursor, METH_VARARGS | METH_KEYWORDS,
     "sqlite_cursor(conn, factory=sqlite3.Cursor): a recording connection's cursor."},
    {"sqlite_close", (PyCFunction)(void (*)(void))Speedups_sqlite_close, METH_FASTCALL,
     "sqlite_close(cursor, *args): a counting cursor's close."},
    {"sqlite_commit", (PyCFunction)(void (*)(void))Speedups_sqlite_commit, METH_FASTCALL,
     "sqlite_commit(conn): a recording connection's commit."},
    {"sqlite_rollback", (PyCFunction)(void (*)(void))Speedups_sqlite_rollback, METH_FASTCALL,
     "sqlite_rollback(conn): a recording connection's rollback."},
    {"method", (PyCFunction)Speedups_method, METH_O,
     "method(fn): fn bound as a method when set on a class (an instancemethod)."},
    {"http_begin", (PyCFunction)(void (*)(void))Speedups_http_begin, METH_FASTCALL,
     "http_begin(scope, receive, send): the installed recorder's hooks' http_request, or None."},
    {"http_recorded", (PyCFunction)Speedups_http_recorded, METH_NOARGS,
     "How many requests HttpRequest recorded in this process."},
    {"http_left_out", (PyCFunction)Speedups_http_left_out, METH_NOARGS,
     "How many requests http_begin left out (LeftOut) in this process."},
    {"sqlite_frame_walks", (PyCFunction)Speedups_sqlite_frame_walks, METH_NOARGS,
     "How many issuing-line walks of the recording sqlite3 methods read frame objects: "
     "the others knew every code object on the way from an earlier walk."},
    {"walk_known", (PyCFunction)Speedups_walk_known, METH_VARARGS,
     "walk_known(frame, places): the first frame outwards whose code is not a known "
     "library's, with its entry in places (or None); None at the stack's end."},
    {NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_speedups",
                                    "C accelerator for elixirscope.capture.", -1,
                                    module_methods};

#define INTERN(var, text) if (!(var = PyUnicode_InternFromString(text))) return NULL

PyMODINIT_FUNC PyInit__speedups(void) {
    if (pthread_atfork(NULL, NULL, after_fork_in_child) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "Expected pthread_atfork to register - at _speedups");
        return NULL;
    }
    detect_tsc();
    init_char_class();
    if (place_extra < 0) place_extra = REQUEST_EXTRA(place_free); /* -1: walked each time */
    for (int b = 0; b < 256; b++) {
        hex_pairs[2 * b] = "0123456789abcdef"[b >> 4];
        hex_pairs[2 * b + 1] = "0123456789abcdef"[b & 15];
    }
    INTERN(s_call, "call");
    INTERN(s_return, "return");
    INTERN(s_exception, "exception");
    INTERN(s_yield, "yield");
    INTERN(s_resume, "resume");
    INTERN(s_attr, "attr");
    INTERN(s_None_text, "None");
    INTERN(s_sa_state, "_sa_instance_state");
    INTERN(s_key, "key");
    INTERN(s_scope, "scope");
    INTERN(s_type, "type");
    INTERN(s_method, "method");
    INTERN(s_path, "path");
    INTERN(s_WS, "WS");
    INTERN(s_space, " ");
    INTERN(s_lt, "<");
    INTERN(s_colon, ":");
    INTERN(s_record, "record");
    INTERN(s_http, "http");
    INTERN(s_req, "req");
    INTERN(s_reqend, "reqend");
    INTERN(s_h_request, "http.request");
    INTERN(s_h_start, "http.response.start");
    INTERN(s_h_body, "http.response.body");
    INTERN(s_body, "body");
    INTERN(s_headers, "headers");
    INTERN(s_status, "status");
    INTERN(s_query_string, "query_string");
    INTERN(s_client, "client");
    INTERN(s_route, "route");
    INTERN(s_path_format, "path_format");
    INTERN(s_root, "/");
    INTERN(s_es_pending, "_es_pending");
    INTERN(s_es_muted, "_es_muted");
    INTERN(s_es_database, "_es_database");
    INTERN(s_es_counts, "_es_counts");
    INTERN(s_connection, "connection");
    INTERN(s_in_transaction, "in_transaction");
    INTERN(s_description, "description");
    INTERN(s_rowcount, "rowcount");
    INTERN(s_before, "before");
    INTERN(s_after, "after");
    INTERN(s_rows, "rows");
    INTERN(s_rec, "rec");
    INTERN(s_ring, "ring");
    INTERN(s_query, "query");
    INTERN(s_recorded, "recorded");
    INTERN(s_redacted, "redacted");
    INTERN(s_pipeline, "_pipeline");
    INTERN(s_config, "config");
    INTERN(s__recorder, "_recorder");
    INTERN(s_envelope, "envelope");
    INTERN(s_es_end, "_es_end");
    INTERN(s_emit, "emit");
    INTERN(s_commit, "commit");
    INTERN(s_rollback, "rollback");
    if (!(empty_tuple = PyTuple_New(0))) return NULL;
    if (!(s_one = PyLong_FromLong(1))) return NULL;
    if (!(http_names = PyTuple_Pack(2, s_method, s_path))) return NULL;
    if (!(b_traceparent = PyBytes_FromString("traceparent"))) return NULL;
    if (!(b_xcid = PyBytes_FromString("x-correlation-id"))) return NULL;
    if (!(s_zero = PyLong_FromLong(0))) return NULL;
    if (!(no_state = Py_BuildValue("(OiOO)", Py_None, -1, Py_None, Py_None))) return NULL;
    INTERN(s_True, "True");
    INTERN(s_False, "False");
    INTERN(s_ellipsis, "...");
    INTERN(s_get_name, "get_name");
    INTERN(s__sensitive, "_sensitive");
    INTERN(s_drop_oldest, "drop_oldest");
    INTERN(s_drop_newest, "drop_newest");
    INTERN(s_block, "block");
    PyTypeObject *types[] = {&HLCType, &IdsType, &RingType, &NodeType, &CellType,
                             &ExitType, &SelfDescrType, &HooksType, &StepsInType,
                             &HttpRequestType, &LeftOutType, &MethodType};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (PyType_Ready(types[i]) < 0) return NULL;
    PyObject *descr = PyObject_New(PyObject, &SelfDescrType);
    if (!descr) return NULL;
    if (PyDict_SetItemString(ExitType.tp_dict, "__enter__", descr) < 0 ||
        PyDict_SetItemString(ExitType.tp_dict, "__exit__", descr) < 0)
        return NULL;
    Py_DECREF(descr);
    PyType_Modified(&ExitType);
    /* the exit used for an unknown fid: bound to no hooks, records nothing */
    Exit *ne = PyObject_GC_New(Exit, &ExitType);
    if (!ne) return NULL;
    ne->vectorcall = (vectorcallfunc)Exit_vectorcall;
    ne->hooks = NULL;
    ne->fid = 0;
    null_exit = (PyObject *)ne;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    if (PyModule_AddType(m, &HLCType) < 0 || PyModule_AddType(m, &IdsType) < 0 ||
        PyModule_AddType(m, &HooksType) < 0 || PyModule_AddType(m, &StepsInType) < 0 ||
        PyModule_AddType(m, &HttpRequestType) < 0 || PyModule_AddType(m, &LeftOutType) < 0 ||
        PyModule_AddObjectRef(m, "RingBuffer", (PyObject *)&RingType) < 0 ||
        PyModule_AddIntConstant(m, "CELL_INPLACE", CELL_INPLACE) < 0 ||
        PyModule_AddIntConstant(m, "TSC_CLOCK", tsc_clock) < 0)
        return NULL;
    return m;
}
