/*
 * dispatch — runs provider calls off the threads that receive requests.
 *
 * A request thread wraps a call in a struct fs9_work and submits it.  One
 * libuv loop thread takes the work and hands it to the libuv threadpool
 * (uv_queue_work is not thread-safe, so other threads only ever wake the
 * loop with uv_async_send).
 *
 * Bounds.  A work goes through three stages: held (submitted, not yet
 * admitted), admitted and waiting for a pool thread, running.
 *  - At most `max_inflight` works are admitted (waiting + running), and
 *    one mount at most `mount_inflight` of them (3/4 by default), so a
 *    mount flooded with calls always leaves room for the others.
 *  - Works that find no room are held in their mount's FIFO and admitted
 *    in order, mounts taking turns, as room frees up.  Holding costs only
 *    the work's memory, so the thread that submitted it goes back to
 *    receiving requests: a flood on one mount does not stop requests for
 *    other mounts (or for providers called inline) from being received.
 *  - Memory is what finally bounds the queue: every held, waiting or
 *    running work is charged its `cost` (bytes), and while the total
 *    exceeds `max_pending_bytes` submitters wait.  That throttles the
 *    kernel (FUSE request threads stop receiving) instead of growing
 *    memory — it takes large writes piling up behind a provider that
 *    cannot keep up; small requests (lookups, reads: ~1 KiB each) are
 *    held by the thousand first.
 *
 * Fairness: each mount has its own queues and may occupy at most
 * `mount_threads` pool threads; free threads go round-robin to mounts with
 * waiting work.  A provider whose calls hang fills its own share of the
 * pool, never all of it, so the rest of the namespace keeps answering.
 *
 * Every work has exactly one answer.  Whoever first claims it answers:
 * the worker with the result, the loop with ETIMEDOUT when the deadline
 * passed (held and waiting works included: the deadline counts from
 * submission), the interrupt callback with EINTR.  A worker that loses the
 * claim cleans up its late result (run() sees fs9_work_claim() fail).
 *
 * Blocking reads do not hold a thread: run() returns FS9_WORK_PARK and the
 * work waits on its mount until the provider calls notify(); a per-mount
 * sequence number closes the window between "no data yet" and parking.
 * Parked works are neither admitted nor charged: thousands of readers may
 * wait for data.  A woken work is held again, like a new submission.
 */
#ifndef FS9_CORE_DISPATCH_H
#define FS9_CORE_DISPATCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fs9_mount;
struct fs9_dispatcher;
struct fs9_work;

enum {
    FS9_WORK_DONE = 0, /**< run() finished; the work can be destroyed */
    FS9_WORK_PARK = 1, /**< run() wants to wait for the mount's notify() */
};

enum {
    /** May be answered early with EINTR (reads and lookups: calls whose
     *  late completion changes nothing). */
    FS9_WORK_INTERRUPTIBLE = 1u << 0,
    /** Never answered with ETIMEDOUT. */
    FS9_WORK_NO_DEADLINE = 1u << 1,
};

struct fs9_work {
    /* Set by the submitter. */
    /** On a pool thread: make the call, then claim and answer (or clean up
     *  a late result).  Returns FS9_WORK_DONE or FS9_WORK_PARK. */
    int (*run)(struct fs9_work *w);
    /** Answer the request with `err` (ETIMEDOUT, EINTR, or 0 for an empty
     *  answer at shutdown).  Called on the loop thread by the dispatcher
     *  after it won the claim. */
    void (*answer)(struct fs9_work *w, int err);
    /** Free the work; no one refers to it any more.  Loop thread. */
    void (*destroy)(struct fs9_work *w);
    struct fs9_mount *mount; /**< must stay referenced until destroy() */
    uint32_t flags;          /**< FS9_WORK_* */
    uint64_t park_key;       /**< with PARK: hash of what it waits on */
    /** Bytes this work keeps in memory until destroy() (the struct and
     *  what it carries, e.g. write data); 0: sizeof(struct fs9_work). */
    size_t cost;

    /* Owned by the dispatcher. */
    atomic_int answered;
    atomic_int refs;
    uint64_t deadline_ns;
    uint64_t park_seq;
    int where;
    struct fs9_work *prev, *next;   /* deadline list or parked list */
    struct fs9_work *qnext, *qprev; /* the mount's waiting queue */
    struct fs9_work *inext;         /* incoming submit/park messages */
    int imsg;
    struct fs9_work *xnext;         /* incoming interrupt notices */
    atomic_int interrupted;
    int result;                     /* what run() returned */
    int slot;                       /* inline slot, or -1 */
    int queued;                     /* counted in its mount's queued */
    size_t charged;                 /* cost counted in pending bytes */
    uv_work_t uv;
    struct fs9_dispatcher *d;
};

struct fs9_dispatch_config {
    unsigned threads;         /**< pool threads (UV_THREADPOOL_SIZE) */
    unsigned mount_threads;   /**< at most this many per mount; 0: 3/4 */
    unsigned max_inflight;    /**< admitted (waiting + running) bound */
    unsigned mount_inflight;  /**< admitted per mount; 0: 3/4 of the above */
    size_t max_pending_bytes; /**< cost of held + admitted works beyond
                                   which submitters wait; 0: 64 KiB per
                                   max_inflight (64 MiB for 1024) */
    double timeout;           /**< seconds; 0 disables deadlines */
    unsigned mount_inline;    /**< calls of one blocking provider that may
                                   run on request threads at once; 0: none
                                   (always the pool) */
    unsigned max_inline;      /**< the same, all mounts together */
};

struct fs9_dispatch_stats {
    uint64_t submitted;
    uint64_t completed;
    uint64_t timeouts;
    uint64_t interrupts;
    uint64_t parks;
    uint64_t inflight;      /**< now: admitted (waiting + running) */
    uint64_t peak_inflight; /**< highest inflight seen (<= max_inflight) */
    uint64_t held;          /**< now: submitted, not admitted yet */
    uint64_t waiting;       /**< now: queued, not yet on a thread (held
                                 ones included) */
    uint64_t running;       /**< now: on a pool thread */
    uint64_t parked;        /**< now: waiting for notify */
    uint64_t pending_bytes; /**< now: cost of held + admitted works */
    uint64_t submit_waits;  /**< times a submitter waited for memory */
};

/** Create and start the dispatcher (its loop thread).  NULL on failure. */
struct fs9_dispatcher *fs9_dispatcher_new(const struct fs9_dispatch_config *c);

/** Finish everything: parked work is answered (0: an empty read, EOF),
 *  queued and running work completes; then the loop thread exits.  No
 *  submit may follow.  Safe to call twice. */
void fs9_dispatcher_drain(struct fs9_dispatcher *d);

/** drain() then free. */
void fs9_dispatcher_free(struct fs9_dispatcher *d);

/** Give `m` its per-mount state; call before any work for `m` is
 *  submitted.  Free it with fs9_dispatcher_detach() when the mount is
 *  released (no work can refer to it then). */
int fs9_dispatcher_attach(struct fs9_dispatcher *d, struct fs9_mount *m);
void fs9_dispatcher_detach(struct fs9_mount *m);

/** Prepare `w` for `d` (once, before it is submitted, parked or given an
 *  interrupt callback). */
void fs9_work_init(struct fs9_work *w, struct fs9_dispatcher *d);

/** Submit from any thread.  Returns at once, except while the works
 *  pending already cost more than max_pending_bytes: then it waits. */
void fs9_dispatcher_submit(struct fs9_dispatcher *d, struct fs9_work *w);

/** Run a call of a provider that may block on the calling request thread,
 *  skipping the two thread hand-offs of the pool, when that is safe: while
 *  its mount has fewer than mount_inline such calls running, all mounts
 *  fewer than max_inline, and none of its work queued for the pool (so an
 *  inline call never overtakes queued ones).  A provider that hangs can so
 *  hold a few request threads, never all of them, and the rest of its
 *  calls queue with their deadlines as usual.  Returns 0 with a slot
 *  taken: run the work, then call fs9_dispatcher_inline_end(); or -1:
 *  submit it.  The loop still answers ETIMEDOUT for an inline call past its
 *  deadline; the call's late result is cleaned up as for pool calls. */
int fs9_dispatcher_inline_begin(struct fs9_dispatcher *d,
                                struct fs9_work *w);
void fs9_dispatcher_inline_end(struct fs9_dispatcher *d, struct fs9_work *w);

/** Park a work that ran inline (not on the pool) until notify. */
void fs9_dispatcher_park(struct fs9_dispatcher *d, struct fs9_work *w);

/** The notify sequence of `m`: read it before a call that may return "no
 *  data yet", store it in w->park_seq; parking with a stale number retries
 *  at once. */
uint64_t fs9_dispatcher_seq(struct fs9_mount *m);

/** Wake parked work of `m` whose park_key is `key` (0: all). Any thread. */
void fs9_dispatcher_notify(struct fs9_dispatcher *d, struct fs9_mount *m,
                           uint64_t key);

/** Claim the right to answer `w`: 1 for exactly one caller. */
static inline int fs9_work_claim(struct fs9_work *w)
{
    int expected = 0;
    return atomic_compare_exchange_strong(&w->answered, &expected, 1);
}

/** Has `w` been answered already (by anyone)? */
static inline int fs9_work_answered(struct fs9_work *w)
{
    return atomic_load(&w->answered);
}

/** From an interrupt callback: the loop answers `w` with EINTR if it is
 *  still unanswered and drops it from its queues.  Never answers on the
 *  calling thread.  Whoever answers an interruptible work must first
 *  unregister the callback (fuse_req_interrupt_func(req, NULL, NULL)). */
void fs9_work_interrupt(struct fs9_work *w);

/** A snapshot of the counters. */
void fs9_dispatcher_stats(struct fs9_dispatcher *d,
                          struct fs9_dispatch_stats *out);

/** Change the deadline (seconds) for work submitted from now on.  Only a
 *  dispatcher created with a timeout has a deadline clock: this changes a
 *  timeout, it cannot start one. */
void fs9_dispatcher_set_timeout(struct fs9_dispatcher *d, double seconds);

/** Monotonic nanoseconds. */
uint64_t fs9_now_ns(void);

#endif
