/* dispatch — see dispatch.h.
 *
 * Threads: submitters (FUSE request threads, fs9d handlers) only touch the
 * incoming lists and the byte budget under `mu`, and wake the loop.
 * Everything else — per-mount queues, admission, the deadline list, the
 * parked lists, starting work — belongs to the loop thread and needs no
 * lock.  Pool threads only run work->run().
 *
 * A work's way: submit (charged its cost) → held in its mount's FIFO →
 * admitted, waiting in its mount's FIFO → running on a pool thread → done
 * (uncharged); or from running to parked (uncharged) and, after notify,
 * held again (charged again).
 */
#include "core/dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mount.h"

enum where { W_NONE, W_HELD, W_WAITING, W_RUNNING, W_PARKED, W_DONE };
enum imsg { M_SUBMIT, M_PARK };

/* The two round-robins of mounts: those with held work that may be
 * admitted, and those with admitted work waiting for a thread. */
enum { R_ADMIT, R_RUN, R_COUNT };

#define NOTIFY_KEYS 8

struct fifo {
    struct fs9_work *head, *tail; /* linked through qnext/qprev */
};

struct ring_link {
    struct fs9_mount_queue *next, *prev;
    int in;
};

#define INLINE_SLOTS 64

struct inline_slot {
    struct fs9_work *w;   /* running on a request thread, or NULL */
    uint64_t deadline_ns; /* 0: none */
};

struct fs9_mount_queue {
    atomic_uint_fast64_t seq; /* bumped by every notify */
    /* Works submitted and not yet on a thread (posted, held, waiting):
     * while there are any, no call of the mount runs inline. */
    atomic_uint queued;
    atomic_uint_fast64_t timeouts;          /* answered ETIMEDOUT */
    atomic_uint_fast64_t timeout_logged_ns; /* last logged, 0: never */
    /* Calls running inline on request threads, watched for deadlines. */
    pthread_mutex_t inline_mu;
    unsigned inline_active;
    struct inline_slot inline_slots[INLINE_SLOTS];
    struct fs9_mount *mount;
    /* Under d->mu: keys notified since the loop last looked. */
    int notify_pending;
    int notify_all;
    unsigned nkeys;
    uint64_t keys[NOTIFY_KEYS];
    struct fs9_mount_queue *nnext;
    struct fs9_mount_queue *anext, *aprev; /* d->attached, under d->mu */
    struct fs9_dispatcher *d;
    /* Loop thread only. */
    struct fifo held;    /* submitted, not admitted yet */
    struct fifo waiting; /* admitted, waiting for a thread */
    unsigned admitted;   /* waiting + running */
    unsigned running;
    struct fs9_work parked; /* sentinel of the parked list */
    struct ring_link link[R_COUNT];
};

struct fs9_dispatcher {
    pthread_mutex_t mu;
    pthread_cond_t room;    /* pending_bytes dropped, or stopped */
    pthread_cond_t drained; /* the loop thread has exited */
    struct fs9_work *in_head, *in_tail;
    struct fs9_work *x_head; /* interrupt notices (xnext) */
    struct fs9_mount_queue *notify_head;
    size_t pending_bytes; /* charged: held + waiting + running works */
    unsigned room_waiters;
    int draining;
    int stopped;

    unsigned threads;
    unsigned mount_threads;
    unsigned max_inflight;
    unsigned mount_inflight;
    unsigned mount_inline;
    unsigned max_inline;
    atomic_uint inline_active;
    size_t max_pending_bytes;
    _Atomic uint64_t timeout_ns;

    struct fs9_mount_queue *attached; /* every queue, under mu (anext) */

    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    uv_check_t check;
    pthread_t thread;
    int thread_started;

    /* Loop thread only. */
    struct fs9_work deadlines; /* sentinel; oldest first */
    struct fs9_mount_queue *ring[R_COUNT];
    unsigned inflight; /* admitted: waiting + running */
    unsigned held;
    unsigned running;

    struct {
        _Atomic uint64_t submitted, completed, timeouts, interrupts, parks,
            inflight, held, waiting, running, parked, peak, submit_waits,
            pending_bytes;
    } st;
};

uint64_t fs9_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- small list helpers (loop thread) ---- */

static void list_init(struct fs9_work *s)
{
    s->next = s->prev = s;
}

static void list_append(struct fs9_work *s, struct fs9_work *w)
{
    w->prev = s->prev;
    w->next = s;
    s->prev->next = w;
    s->prev = w;
}

static void list_del(struct fs9_work *w)
{
    if (w->next) {
        w->prev->next = w->next;
        w->next->prev = w->prev;
        w->next = w->prev = NULL;
    }
}

static void ring_add(struct fs9_dispatcher *d, struct fs9_mount_queue *q,
                     int r)
{
    struct ring_link *l = &q->link[r];
    if (l->in)
        return;
    l->in = 1;
    struct fs9_mount_queue *head = d->ring[r];
    if (!head) {
        l->next = l->prev = q;
        d->ring[r] = q;
    } else {
        l->prev = head->link[r].prev;
        l->next = head;
        head->link[r].prev->link[r].next = q;
        head->link[r].prev = q;
    }
}

static void ring_del(struct fs9_dispatcher *d, struct fs9_mount_queue *q,
                     int r)
{
    struct ring_link *l = &q->link[r];
    if (!l->in)
        return;
    l->in = 0;
    if (l->next == q) {
        d->ring[r] = NULL;
    } else {
        l->prev->link[r].next = l->next;
        l->next->link[r].prev = l->prev;
        if (d->ring[r] == q)
            d->ring[r] = l->next;
    }
    l->next = l->prev = NULL;
}

static void fifo_push(struct fifo *f, struct fs9_work *w)
{
    w->qnext = NULL;
    w->qprev = f->tail;
    if (f->tail)
        f->tail->qnext = w;
    else
        f->head = w;
    f->tail = w;
}

static void fifo_del(struct fifo *f, struct fs9_work *w)
{
    if (w->qprev)
        w->qprev->qnext = w->qnext;
    else
        f->head = w->qnext;
    if (w->qnext)
        w->qnext->qprev = w->qprev;
    else
        f->tail = w->qprev;
    w->qnext = w->qprev = NULL;
}

/* ---- memory budget ---- */

/* The mount's count of works waiting for the pool (see `queued`). */
static void count_queued(struct fs9_work *w)
{
    if (!w->queued) {
        w->queued = 1;
        atomic_fetch_add(&w->mount->queue->queued, 1);
    }
}

static void uncount_queued(struct fs9_work *w)
{
    if (w->queued) {
        w->queued = 0;
        atomic_fetch_sub(&w->mount->queue->queued, 1);
    }
}

static size_t work_cost(const struct fs9_work *w)
{
    return w->cost ? w->cost : sizeof *w;
}

/* Would `cost` more bytes overflow the budget?  A work alone is always
 * let in, however big, so nothing waits forever. */
static int over_budget(const struct fs9_dispatcher *d, size_t cost)
{
    return d->pending_bytes > 0 &&
           d->pending_bytes + cost > d->max_pending_bytes;
}

/* Count `w` in the pending bytes.  Caller holds mu. */
static void charge_locked(struct fs9_dispatcher *d, struct fs9_work *w)
{
    w->charged = work_cost(w);
    d->pending_bytes += w->charged;
    atomic_store(&d->st.pending_bytes, d->pending_bytes);
}

/* Charge without waiting: a retry the loop makes on its own. */
static void charge(struct fs9_dispatcher *d, struct fs9_work *w)
{
    pthread_mutex_lock(&d->mu);
    charge_locked(d, w);
    pthread_mutex_unlock(&d->mu);
}

static void uncharge(struct fs9_dispatcher *d, struct fs9_work *w)
{
    if (!w->charged)
        return;
    pthread_mutex_lock(&d->mu);
    d->pending_bytes -= w->charged;
    w->charged = 0;
    atomic_store(&d->st.pending_bytes, d->pending_bytes);
    if (d->room_waiters)
        pthread_cond_broadcast(&d->room); /* several may fit now */
    pthread_mutex_unlock(&d->mu);
}

/* One line per mount and minute when calls time out: what an operator
 * needs (which provider, how often) without a line per request. */
static void log_timeout(struct fs9_mount *m, uint64_t now)
{
    struct fs9_mount_queue *q = m->queue;
    uint64_t n = atomic_fetch_add(&q->timeouts, 1) + 1;
    uint64_t last = atomic_load(&q->timeout_logged_ns);
    if (last && now - last < 60ull * 1000000000ull)
        return;
    if (!atomic_compare_exchange_strong(&q->timeout_logged_ns, &last, now))
        return;
    fs9_warn("%s at %s: a call took longer than the timeout and was "
             "answered ETIMEDOUT (%llu so far)",
             m->ops ? m->ops->name : "provider", m->path ? m->path : "?",
             (unsigned long long)n);
}

/* ---- lifetime ---- */

static void work_unref(struct fs9_work *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1)
        w->destroy(w);
}

/* The work is over: drop the dispatcher's reference.  Loop thread. */
static void finish(struct fs9_dispatcher *d, struct fs9_work *w)
{
    uncount_queued(w);
    w->where = W_DONE;
    atomic_fetch_add(&d->st.completed, 1);
    uncharge(d, w);
    work_unref(w);
}

/* ---- the loop thread ---- */

/* A submitted (or woken) work joins its mount's held FIFO. */
static void hold(struct fs9_dispatcher *d, struct fs9_work *w)
{
    struct fs9_mount_queue *q = w->mount->queue;
    uint64_t t = atomic_load(&d->timeout_ns);
    w->deadline_ns = (t && !(w->flags & FS9_WORK_NO_DEADLINE))
                         ? fs9_now_ns() + t
                         : 0;
    if (w->deadline_ns)
        list_append(&d->deadlines, w);
    count_queued(w);
    fifo_push(&q->held, w);
    w->where = W_HELD;
    d->held++;
    atomic_fetch_add(&d->st.held, 1);
    atomic_fetch_add(&d->st.waiting, 1); /* held works wait too */
    ring_add(d, q, R_ADMIT);
}

/* `w` leaves the held FIFO: admitted (still waiting) or dropped. */
static void unhold(struct fs9_dispatcher *d, struct fs9_mount_queue *q,
                   struct fs9_work *w)
{
    fifo_del(&q->held, w);
    d->held--;
    atomic_fetch_sub(&d->st.held, 1);
}

/* An admitted work of `q` left (finished, parked, timed out, interrupted):
 * its room goes to the next held work. */
static void leave_admitted(struct fs9_dispatcher *d, struct fs9_mount_queue *q)
{
    q->admitted--;
    d->inflight--;
    atomic_store(&d->st.inflight, d->inflight);
    if (q->held.head)
        ring_add(d, q, R_ADMIT);
}

/* Admit held works while there is room: globally max_inflight, per mount
 * mount_inflight; mounts take turns.  A mount at its share leaves the
 * ring; leave_admitted() brings it back. */
static void admit(struct fs9_dispatcher *d)
{
    while (d->inflight < d->max_inflight && d->ring[R_ADMIT]) {
        struct fs9_mount_queue *q = d->ring[R_ADMIT];
        if (!q->held.head || q->admitted >= d->mount_inflight) {
            ring_del(d, q, R_ADMIT);
            continue;
        }
        d->ring[R_ADMIT] = q->link[R_ADMIT].next;
        struct fs9_work *w = q->held.head;
        unhold(d, q, w);
        q->admitted++;
        d->inflight++;
        atomic_store(&d->st.inflight, d->inflight);
        if (d->inflight > atomic_load(&d->st.peak))
            atomic_store(&d->st.peak, d->inflight);
        fifo_push(&q->waiting, w);
        w->where = W_WAITING;
        ring_add(d, q, R_RUN);
        if (!q->held.head)
            ring_del(d, q, R_ADMIT);
    }
}

static void work_cb(uv_work_t *req)
{
    struct fs9_work *w = req->data;
    if (fs9_work_answered(w)) {
        w->result = FS9_WORK_DONE; /* answered before it started: skip */
        return;
    }
    w->result = w->run(w);
}

static void park(struct fs9_dispatcher *d, struct fs9_work *w);
static void pump(struct fs9_dispatcher *d);

static void after_cb(uv_work_t *req, int status)
{
    struct fs9_work *w = req->data;
    struct fs9_dispatcher *d = w->d;
    struct fs9_mount_queue *q = w->mount->queue;
    q->running--;
    d->running--;
    atomic_fetch_sub(&d->st.running, 1);
    leave_admitted(d, q);
    list_del(w);
    if (q->waiting.head)
        ring_add(d, q, R_RUN); /* it may have left the ring at its share */
    if (status == 0 && w->result == FS9_WORK_PARK && !fs9_work_answered(w))
        park(d, w);
    else
        finish(d, w);
    pump(d);
}

static void start(struct fs9_dispatcher *d, struct fs9_mount_queue *q)
{
    struct fs9_work *w = q->waiting.head;
    fifo_del(&q->waiting, w);
    uncount_queued(w);
    atomic_fetch_sub(&d->st.waiting, 1);
    q->running++;
    d->running++;
    atomic_fetch_add(&d->st.running, 1);
    w->where = W_RUNNING;
    w->uv.data = w;
    int rc = uv_queue_work(&d->loop, &w->uv, work_cb, after_cb);
    if (rc != 0) { /* cannot happen with a live loop; never lose a reply */
        fs9_error("dispatch: uv_queue_work: %s", uv_strerror(rc));
        w->result = w->run(w);
        after_cb(&w->uv, 0);
    }
}

static void schedule(struct fs9_dispatcher *d)
{
    /* Round-robin over mounts with waiting work, each up to its share.  A
     * mount at its share leaves the ring; after_cb() brings it back when one
     * of its own calls finishes. */
    while (d->running < d->threads && d->ring[R_RUN]) {
        struct fs9_mount_queue *q = d->ring[R_RUN];
        if (!q->waiting.head || q->running >= d->mount_threads) {
            ring_del(d, q, R_RUN);
            continue;
        }
        d->ring[R_RUN] = q->link[R_RUN].next;
        start(d, q);
        if (!q->waiting.head)
            ring_del(d, q, R_RUN);
    }
}

/* Admit what fits, then start what has a thread. */
static void pump(struct fs9_dispatcher *d)
{
    admit(d);
    schedule(d);
}

/* `w` (not admitted, not in any queue) waits for notify. */
static void park(struct fs9_dispatcher *d, struct fs9_work *w)
{
    struct fs9_mount_queue *q = w->mount->queue;
    uncharge(d, w); /* parked works cost nothing against the budget */
    uncount_queued(w);
    if (fs9_work_answered(w)) { /* interrupted meanwhile */
        finish(d, w);
        return;
    }
    if (d->draining) {
        if (fs9_work_claim(w))
            w->answer(w, 0);
        finish(d, w);
        return;
    }
    if (w->park_seq != atomic_load(&q->seq)) {
        /* A notify came between "no data yet" and now: run again. */
        charge(d, w);
        hold(d, w);
        return;
    }
    list_append(&q->parked, w);
    w->where = W_PARKED;
    atomic_fetch_add(&d->st.parks, 1);
    atomic_fetch_add(&d->st.parked, 1);
}

static void wake_parked(struct fs9_dispatcher *d, struct fs9_mount_queue *q,
                        int all, const uint64_t *keys, unsigned nkeys)
{
    struct fs9_work *w = q->parked.next;
    while (w != &q->parked) {
        struct fs9_work *next = w->next;
        int match = all || w->park_key == 0;
        for (unsigned i = 0; !match && i < nkeys; i++)
            match = keys[i] == w->park_key;
        if (match) {
            list_del(w);
            atomic_fetch_sub(&d->st.parked, 1);
            /* The retry must see every notify from now on. */
            w->park_seq = atomic_load(&q->seq);
            charge(d, w);
            hold(d, w);
        }
        w = next;
    }
}

/* At drain, parked work is answered with an empty read (EOF).  Loop
 * thread.  The walk over the attached queues is under mu; the answers are
 * given after it, since finish() takes mu itself.  A queue with parked work
 * cannot be detached meanwhile: parked work holds a mount reference. */
static void drain_parked(struct fs9_dispatcher *d)
{
    struct fs9_work *list = NULL;
    pthread_mutex_lock(&d->mu);
    for (struct fs9_mount_queue *q = d->attached; q; q = q->anext) {
        while (q->parked.next != &q->parked) {
            struct fs9_work *w = q->parked.next;
            list_del(w);
            w->inext = list;
            list = w;
        }
    }
    pthread_mutex_unlock(&d->mu);
    while (list) {
        struct fs9_work *w = list;
        list = w->inext;
        w->inext = NULL;
        atomic_fetch_sub(&d->st.parked, 1);
        if (fs9_work_claim(w))
            w->answer(w, 0);
        finish(d, w);
    }
}

/* Take an answered work out of wherever it waits (not running: a running
 * work finishes by itself).  Loop thread. */
static void remove_from_loop(struct fs9_dispatcher *d, struct fs9_work *w)
{
    struct fs9_mount_queue *q = w->mount->queue;
    switch (w->where) {
    case W_HELD:
        unhold(d, q, w);
        atomic_fetch_sub(&d->st.waiting, 1);
        list_del(w);
        finish(d, w);
        break;
    case W_WAITING:
        fifo_del(&q->waiting, w);
        list_del(w);
        atomic_fetch_sub(&d->st.waiting, 1);
        leave_admitted(d, q);
        finish(d, w);
        break;
    case W_PARKED:
        list_del(w);
        atomic_fetch_sub(&d->st.parked, 1);
        finish(d, w);
        break;
    default: /* running: finishes by itself; none/done: nothing to do */
        break;
    }
}

/* Calls running inline past their deadline are answered ETIMEDOUT here;
 * the request thread running one cleans up its late result.  A slot is
 * only read under its mount's inline_mu, which the request thread takes to
 * give the slot back before it frees the work. */
static void watch_inline(struct fs9_dispatcher *d, uint64_t now)
{
    if (!atomic_load(&d->inline_active))
        return;
    pthread_mutex_lock(&d->mu);
    for (struct fs9_mount_queue *q = d->attached; q; q = q->anext) {
        pthread_mutex_lock(&q->inline_mu);
        for (unsigned i = 0; q->inline_active && i < INLINE_SLOTS; i++) {
            struct inline_slot *sl = &q->inline_slots[i];
            if (!sl->w || !sl->deadline_ns || sl->deadline_ns > now)
                continue;
            sl->deadline_ns = 0; /* once */
            if (fs9_work_claim(sl->w)) {
                atomic_fetch_add(&d->st.timeouts, 1);
                sl->w->answer(sl->w, ETIMEDOUT);
                log_timeout(q->mount, now);
            }
        }
        pthread_mutex_unlock(&q->inline_mu);
    }
    pthread_mutex_unlock(&d->mu);
}

static void on_tick(uv_timer_t *t)
{
    struct fs9_dispatcher *d = t->data;
    uint64_t now = fs9_now_ns();
    watch_inline(d, now);
    while (d->deadlines.next != &d->deadlines) {
        struct fs9_work *w = d->deadlines.next;
        if (w->deadline_ns > now)
            break;
        list_del(w);
        if (fs9_work_claim(w)) {
            atomic_fetch_add(&d->st.timeouts, 1);
            w->answer(w, ETIMEDOUT);
            log_timeout(w->mount, now);
        }
        if (w->where == W_RUNNING) {
            /* Not started yet on the pool: take it back.  Started: its late
             * result is cleaned up by run() itself. */
            uv_cancel((uv_req_t *)&w->uv);
        } else {
            remove_from_loop(d, w);
        }
    }
    pump(d);
}

static int loop_idle(struct fs9_dispatcher *d)
{
    int idle;
    pthread_mutex_lock(&d->mu);
    idle = !d->in_head && !d->x_head;
    pthread_mutex_unlock(&d->mu);
    return idle && d->inflight == 0 && d->held == 0 && d->running == 0;
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void on_wake(uv_async_t *a)
{
    struct fs9_dispatcher *d = a->data;
    pthread_mutex_lock(&d->mu);
    struct fs9_work *in = d->in_head;
    d->in_head = d->in_tail = NULL;
    struct fs9_work *xs = d->x_head;
    d->x_head = NULL;
    struct fs9_mount_queue *nq = d->notify_head;
    d->notify_head = NULL;
    int draining = d->draining;
    pthread_mutex_unlock(&d->mu);

    while (in) {
        struct fs9_work *w = in;
        in = w->inext;
        w->inext = NULL;
        switch (w->imsg) {
        case M_SUBMIT:
            if (fs9_work_answered(w))
                finish(d, w);
            else
                hold(d, w);
            break;
        case M_PARK:
            park(d, w);
            break;
        }
    }
    while (xs) {
        struct fs9_work *w = xs;
        xs = w->xnext;
        w->xnext = NULL;
        /* A running call of a provider whose reads move a cursor (streams)
         * may already have consumed what it is about to return: answering
         * EINTR now would lose those bytes, so it finishes instead. */
        int keep = w->where == W_RUNNING &&
                   (w->mount->caps & FS9_CAP_STATEFUL_READ);
        if (!keep && fs9_work_claim(w)) {
            atomic_fetch_add(&d->st.interrupts, 1);
            w->answer(w, EINTR);
        }
        remove_from_loop(d, w);
        work_unref(w); /* the notice's own reference */
    }
    while (nq) {
        struct fs9_mount_queue *q = nq;
        uint64_t keys[NOTIFY_KEYS];
        pthread_mutex_lock(&d->mu);
        nq = q->nnext;
        q->nnext = NULL;
        int all = q->notify_all;
        unsigned n = q->nkeys;
        memcpy(keys, q->keys, sizeof keys);
        q->notify_pending = q->notify_all = 0;
        q->nkeys = 0;
        pthread_mutex_unlock(&d->mu);
        wake_parked(d, q, all, keys, n);
        fs9_mount_unref(q->mount); /* taken by notify() */
    }
    if (draining)
        drain_parked(d);
    pump(d);
    if (draining && loop_idle(d) && !uv_is_closing((uv_handle_t *)&d->wake)) {
        uv_close((uv_handle_t *)&d->wake, close_cb);
        uv_close((uv_handle_t *)&d->tick, close_cb);
        uv_close((uv_handle_t *)&d->check, close_cb);
    }
}

static void *loop_main(void *arg)
{
    struct fs9_dispatcher *d = arg;
    uv_run(&d->loop, UV_RUN_DEFAULT);
    pthread_mutex_lock(&d->mu);
    d->stopped = 1;
    pthread_cond_broadcast(&d->drained);
    pthread_cond_broadcast(&d->room);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* after_cb() runs on the loop: when draining, check for the end there too. */
static void check_drained(uv_check_t *c)
{
    struct fs9_dispatcher *d = c->data;
    int draining;
    pthread_mutex_lock(&d->mu);
    draining = d->draining;
    pthread_mutex_unlock(&d->mu);
    if (draining && !uv_is_closing((uv_handle_t *)&d->wake) &&
        loop_idle(d)) {
        drain_parked(d);
        if (loop_idle(d)) {
            uv_close((uv_handle_t *)&d->wake, close_cb);
            uv_close((uv_handle_t *)&d->tick, close_cb);
            uv_close((uv_handle_t *)c, close_cb);
        }
    }
}

struct fs9_dispatcher *fs9_dispatcher_new(const struct fs9_dispatch_config *c)
{
    struct fs9_dispatcher *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->threads = c->threads ? c->threads : 16;
    if (d->threads > 1024)
        d->threads = 1024;
    d->mount_threads = c->mount_threads ? c->mount_threads
                                        : (d->threads * 3 + 3) / 4;
    if (d->mount_threads > d->threads)
        d->mount_threads = d->threads;
    d->mount_inline = c->mount_inline < INLINE_SLOTS ? c->mount_inline
                                                     : INLINE_SLOTS;
    d->max_inline = c->max_inline ? c->max_inline : d->mount_inline * 2;
    d->max_inflight = c->max_inflight ? c->max_inflight : 1024;
    d->mount_inflight = c->mount_inflight
                            ? c->mount_inflight
                            : d->max_inflight - d->max_inflight / 4;
    if (d->mount_inflight > d->max_inflight)
        d->mount_inflight = d->max_inflight;
    d->max_pending_bytes = c->max_pending_bytes
                               ? c->max_pending_bytes
                               : (size_t)d->max_inflight * 65536;
    atomic_store(&d->timeout_ns, (uint64_t)(c->timeout * 1e9));
    list_init(&d->deadlines);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->room, NULL);
    pthread_cond_init(&d->drained, NULL);

    /* libuv sizes its pool once per process, at first use. */
    char n[16];
    snprintf(n, sizeof n, "%u", d->threads);
    setenv("UV_THREADPOOL_SIZE", n, 0);

    if (uv_loop_init(&d->loop) != 0)
        goto fail;
    d->wake.data = d;
    d->tick.data = d;
    uv_async_init(&d->loop, &d->wake, on_wake);
    uv_timer_init(&d->loop, &d->tick);
    uv_check_init(&d->loop, &d->check);
    d->check.data = d;
    uv_check_start(&d->check, check_drained);
    uv_unref((uv_handle_t *)&d->check);
    uint64_t t = atomic_load(&d->timeout_ns);
    /* Deadlines are checked a quarter timeout apart (10 ms to 1 s); with
     * no timeout the loop sleeps until there is work. */
    if (t) {
        uint64_t tick_ms = t / 4000000;
        if (tick_ms < 10)
            tick_ms = 10;
        if (tick_ms > 1000)
            tick_ms = 1000;
        uv_timer_start(&d->tick, on_tick, tick_ms, tick_ms);
    }
    uv_unref((uv_handle_t *)&d->tick);

    /* The loop thread and the pool it creates take no process signals:
     * those go to the thread that owns the FUSE session. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&d->thread, NULL, loop_main, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        goto fail_loop;
    d->thread_started = 1;
    return d;
fail_loop:
    uv_close((uv_handle_t *)&d->wake, NULL);
    uv_close((uv_handle_t *)&d->tick, NULL);
    uv_close((uv_handle_t *)&d->check, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
fail:
    free(d);
    return NULL;
}

void fs9_dispatcher_drain(struct fs9_dispatcher *d)
{
    pthread_mutex_lock(&d->mu);
    if (!d->thread_started) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    d->draining = 1;
    if (!d->stopped)
        uv_async_send(&d->wake);
    while (!d->stopped)
        pthread_cond_wait(&d->drained, &d->mu);
    d->thread_started = 0;
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
}

void fs9_dispatcher_free(struct fs9_dispatcher *d)
{
    if (!d)
        return;
    fs9_dispatcher_drain(d);
    uv_loop_close(&d->loop);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->room);
    pthread_cond_destroy(&d->drained);
    free(d);
}

int fs9_dispatcher_attach(struct fs9_dispatcher *d, struct fs9_mount *m)
{
    struct fs9_mount_queue *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->mount = m;
    q->d = d;
    pthread_mutex_init(&q->inline_mu, NULL);
    list_init(&q->parked);
    pthread_mutex_lock(&d->mu);
    q->anext = d->attached;
    if (d->attached)
        d->attached->aprev = q;
    d->attached = q;
    pthread_mutex_unlock(&d->mu);
    m->queue = q;
    return 0;
}

void fs9_dispatcher_detach(struct fs9_mount *m)
{
    struct fs9_mount_queue *q = m->queue;
    if (!q)
        return;
    struct fs9_dispatcher *d = q->d;
    pthread_mutex_lock(&d->mu);
    if (q->aprev)
        q->aprev->anext = q->anext;
    else
        d->attached = q->anext;
    if (q->anext)
        q->anext->aprev = q->aprev;
    pthread_mutex_unlock(&d->mu);
    m->queue = NULL;
    pthread_mutex_destroy(&q->inline_mu);
    free(q);
}

static void post(struct fs9_dispatcher *d, struct fs9_work *w, int msg)
{
    w->imsg = msg;
    w->inext = NULL;
    if (d->in_tail)
        d->in_tail->inext = w;
    else
        d->in_head = w;
    d->in_tail = w;
}

void fs9_work_init(struct fs9_work *w, struct fs9_dispatcher *d)
{
    w->d = d;
    w->where = W_NONE;
    w->next = w->prev = NULL;
    w->qnext = w->qprev = NULL;
    w->inext = w->xnext = NULL;
    w->charged = 0;
    w->slot = -1;
    w->queued = 0;
    atomic_store(&w->refs, 1);
    atomic_store(&w->answered, 0);
    atomic_store(&w->interrupted, 0);
}

void fs9_dispatcher_submit(struct fs9_dispatcher *d, struct fs9_work *w)
{
    size_t cost = work_cost(w);
    atomic_fetch_add(&d->st.submitted, 1);
    pthread_mutex_lock(&d->mu);
    if (!d->stopped && over_budget(d, cost)) {
        atomic_fetch_add(&d->st.submit_waits, 1);
        d->room_waiters++;
        while (!d->stopped && over_budget(d, cost))
            pthread_cond_wait(&d->room, &d->mu);
        d->room_waiters--;
    }
    if (d->stopped) {
        /* Only after drain: answer rather than lose the request. */
        pthread_mutex_unlock(&d->mu);
        if (fs9_work_claim(w))
            w->answer(w, EIO);
        work_unref(w);
        return;
    }
    charge_locked(d, w);
    count_queued(w);
    post(d, w, M_SUBMIT);
    pthread_mutex_unlock(&d->mu);
    uv_async_send(&d->wake);
}

int fs9_dispatcher_inline_begin(struct fs9_dispatcher *d, struct fs9_work *w)
{
    struct fs9_mount_queue *q = w->mount->queue;
    if (!q || !d->mount_inline || atomic_load(&q->queued) > 0 ||
        atomic_load(&d->inline_active) >= d->max_inline)
        return -1;
    int slot = -1;
    pthread_mutex_lock(&q->inline_mu);
    if (q->inline_active < d->mount_inline) {
        for (int i = 0; i < INLINE_SLOTS; i++) {
            if (!q->inline_slots[i].w) {
                slot = i;
                break;
            }
        }
    }
    if (slot >= 0) {
        uint64_t t = atomic_load(&d->timeout_ns);
        q->inline_slots[slot].w = w;
        q->inline_slots[slot].deadline_ns =
            (t && !(w->flags & FS9_WORK_NO_DEADLINE)) ? fs9_now_ns() + t
                                                       : 0;
        q->inline_active++;
        atomic_fetch_add(&d->inline_active, 1);
    }
    pthread_mutex_unlock(&q->inline_mu);
    w->slot = slot;
    return slot >= 0 ? 0 : -1;
}

void fs9_dispatcher_inline_end(struct fs9_dispatcher *d, struct fs9_work *w)
{
    struct fs9_mount_queue *q = w->mount->queue;
    if (w->slot < 0)
        return;
    pthread_mutex_lock(&q->inline_mu);
    q->inline_slots[w->slot].w = NULL;
    q->inline_active--;
    atomic_fetch_sub(&d->inline_active, 1);
    pthread_mutex_unlock(&q->inline_mu);
    w->slot = -1;
}

void fs9_dispatcher_park(struct fs9_dispatcher *d, struct fs9_work *w)
{
    pthread_mutex_lock(&d->mu);
    if (d->stopped) {
        pthread_mutex_unlock(&d->mu);
        if (fs9_work_claim(w))
            w->answer(w, 0);
        work_unref(w);
        return;
    }
    post(d, w, M_PARK);
    pthread_mutex_unlock(&d->mu);
    uv_async_send(&d->wake);
}

uint64_t fs9_dispatcher_seq(struct fs9_mount *m)
{
    return m->queue ? atomic_load(&m->queue->seq) : 0;
}

void fs9_dispatcher_notify(struct fs9_dispatcher *d, struct fs9_mount *m,
                           uint64_t key)
{
    struct fs9_mount_queue *q = m->queue;
    if (!q)
        return;
    atomic_fetch_add(&q->seq, 1);
    pthread_mutex_lock(&d->mu);
    if (d->stopped) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    if (key == 0 || q->nkeys == NOTIFY_KEYS) {
        q->notify_all = 1;
    } else if (!q->notify_all) {
        unsigned i = 0;
        while (i < q->nkeys && q->keys[i] != key)
            i++;
        if (i == q->nkeys)
            q->keys[q->nkeys++] = key;
    }
    int first = !q->notify_pending;
    if (first) {
        q->notify_pending = 1;
        fs9_mount_ref(m); /* dropped by the loop */
        q->nnext = d->notify_head;
        d->notify_head = q;
    }
    pthread_mutex_unlock(&d->mu);
    if (first)
        uv_async_send(&d->wake);
}

void fs9_work_interrupt(struct fs9_work *w)
{
    struct fs9_dispatcher *d = w->d;
    if (atomic_exchange(&w->interrupted, 1))
        return; /* one notice is enough */
    /* Only a notice: answering here could free the request inside
     * libfuse's own callback.  The loop answers, after unregistering the
     * callback (which waits for this one to return).  Until then whoever
     * else answers also unregisters first, so `w` is alive here. */
    atomic_fetch_add(&w->refs, 1);
    pthread_mutex_lock(&d->mu);
    if (d->stopped) {
        pthread_mutex_unlock(&d->mu);
        work_unref(w);
        return;
    }
    w->xnext = d->x_head;
    d->x_head = w;
    pthread_mutex_unlock(&d->mu);
    uv_async_send(&d->wake);
}

void fs9_dispatcher_stats(struct fs9_dispatcher *d,
                          struct fs9_dispatch_stats *out)
{
    out->submitted = atomic_load(&d->st.submitted);
    out->completed = atomic_load(&d->st.completed);
    out->timeouts = atomic_load(&d->st.timeouts);
    out->interrupts = atomic_load(&d->st.interrupts);
    out->parks = atomic_load(&d->st.parks);
    out->held = atomic_load(&d->st.held);
    out->waiting = atomic_load(&d->st.waiting);
    out->running = atomic_load(&d->st.running);
    out->parked = atomic_load(&d->st.parked);
    out->peak_inflight = atomic_load(&d->st.peak);
    out->submit_waits = atomic_load(&d->st.submit_waits);
    out->inflight = atomic_load(&d->st.inflight);
    out->pending_bytes = atomic_load(&d->st.pending_bytes);
}

void fs9_dispatcher_set_timeout(struct fs9_dispatcher *d, double seconds)
{
    atomic_store(&d->timeout_ns, (uint64_t)(seconds * 1e9));
}
