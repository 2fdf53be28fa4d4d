/* Unit tests of the dispatcher (src/core/dispatch.c), with fake mounts and
 * fake works: no FUSE, no providers.
 *
 * A fake work's run() does what its mode says — answer at once, block
 * until the test opens its gate, or park until its key has data — then
 * claims and answers, or records a late result when someone else (a
 * deadline, an interrupt) answered first.  Waits are for events, bounded
 * by a generous 10 s so a bug fails instead of hanging; nothing here
 * asserts on timing.  Only Test() and cr_assert_*: the file also builds
 * against bench/criterion_shim, to run under ThreadSanitizer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dispatch.h"
#include "core/mount.h"

enum mode { QUICK, BLOCK, PARK };

struct fake {
    struct fs9_work w; /* first: the dispatcher hands us back this */
    enum mode mode;
    uint64_t key;           /* PARK: waits until data[key] */
    int race_notify;        /* PARK: notify right after "no data yet" */
    atomic_int go;          /* BLOCK: the gate */
    atomic_int runs;        /* times run() was called */
    atomic_int answers;     /* times answer() or run() answered */
    atomic_int err;         /* the answer: 0 or an errno */
    atomic_int late;        /* run() lost the claim and cleaned up */
    atomic_int destroyed;
};

#define NFAKES 256
#define NKEYS 4

static struct fs9_dispatcher *d;
static struct fs9_mount mounts[3];
static struct fake fakes[NFAKES];
static atomic_int data[NKEYS]; /* PARK: has key k data? */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;

/* Wait for `cond`, failing after 10 s: a functional bound, not a timing
 * assertion. */
#define WAIT_UNTIL(cond)                                                    \
    do {                                                                    \
        for (int wait_i_ = 0; !(cond); wait_i_++) {                         \
            cr_assert(wait_i_ < 10000, "gave up waiting for: %s", #cond);   \
            usleep(1000);                                                   \
        }                                                                   \
    } while (0)

static void record_answer(struct fake *f, int err)
{
    atomic_store(&f->err, err);
    atomic_fetch_add(&f->answers, 1);
}

static int fake_run(struct fs9_work *w)
{
    struct fake *f = (struct fake *)w;
    atomic_fetch_add(&f->runs, 1);
    if (f->mode == BLOCK) {
        pthread_mutex_lock(&gate_mu);
        while (!atomic_load(&f->go))
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    } else if (f->mode == PARK) {
        w->park_seq = fs9_dispatcher_seq(w->mount);
        if (!atomic_load(&data[f->key])) {
            if (f->race_notify) {
                /* The provider's notify lands between our "no data yet"
                 * and the park: without the sequence number the work
                 * would sleep forever. */
                atomic_store(&data[f->key], 1);
                fs9_dispatcher_notify(d, w->mount, f->key);
            }
            w->park_key = f->key;
            return FS9_WORK_PARK;
        }
    }
    if (fs9_work_claim(w))
        record_answer(f, 0);
    else
        atomic_fetch_add(&f->late, 1); /* e.g. close what a late open made */
    return FS9_WORK_DONE;
}

static void fake_answer(struct fs9_work *w, int err)
{
    record_answer((struct fake *)w, err);
}

static void fake_destroy(struct fs9_work *w)
{
    atomic_store(&((struct fake *)w)->destroyed, 1);
}

static struct fake *fake(int i, int mount, enum mode mode)
{
    struct fake *f = &fakes[i];
    memset(f, 0, sizeof *f);
    fs9_work_init(&f->w, d);
    f->w.run = fake_run;
    f->w.answer = fake_answer;
    f->w.destroy = fake_destroy;
    f->w.mount = &mounts[mount];
    f->mode = mode;
    return f;
}

static void open_gate(struct fake *f)
{
    pthread_mutex_lock(&gate_mu);
    atomic_store(&f->go, 1);
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static struct fs9_dispatch_stats stats(void)
{
    struct fs9_dispatch_stats s;
    fs9_dispatcher_stats(d, &s);
    return s;
}

static void start(struct fs9_dispatch_config c)
{
    d = fs9_dispatcher_new(&c);
    cr_assert_not_null(d);
    memset(mounts, 0, sizeof mounts);
    for (int i = 0; i < 3; i++) {
        atomic_store(&mounts[i].refs, 1);
        cr_assert_eq(fs9_dispatcher_attach(d, &mounts[i]), 0);
    }
    for (int k = 0; k < NKEYS; k++)
        atomic_store(&data[k], 0);
}

/* Open every gate, drain, and check that every work used was destroyed
 * and answered exactly once. */
static void stop(int used)
{
    for (int i = 0; i < used; i++)
        open_gate(&fakes[i]);
    fs9_dispatcher_drain(d);
    for (int i = 0; i < used; i++) {
        cr_assert_eq(atomic_load(&fakes[i].destroyed), 1,
                     "work %d not destroyed", i);
        cr_assert_eq(atomic_load(&fakes[i].answers), 1,
                     "work %d answered %d times", i,
                     atomic_load(&fakes[i].answers));
    }
    for (int i = 0; i < 3; i++)
        fs9_dispatcher_detach(&mounts[i]);
    fs9_dispatcher_free(d);
    d = NULL;
}

static const struct fs9_dispatch_config small = {
    .threads = 4, .max_inflight = 64, .timeout = 0};

Test(dispatch, submitted_work_runs_and_is_answered_exactly_once)
{
    start(small);
    for (int i = 0; i < 100; i++)
        fs9_dispatcher_submit(d, &fake(i, i % 3, QUICK)->w);
    for (int i = 0; i < 100; i++)
        WAIT_UNTIL(atomic_load(&fakes[i].destroyed));
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(atomic_load(&fakes[i].runs), 1);
        cr_assert_eq(atomic_load(&fakes[i].err), 0);
        cr_assert_eq(atomic_load(&fakes[i].late), 0);
    }
    struct fs9_dispatch_stats s = stats();
    cr_assert_eq(s.submitted, 100);
    cr_assert_eq(s.completed, 100);
    cr_assert_eq(s.inflight, 0);
    cr_assert_eq(s.pending_bytes, 0);
    stop(100);
}

Test(dispatch, admitted_works_never_exceed_max_inflight_and_the_rest_are_held)
{
    struct fs9_dispatch_config c = {.threads = 2, .max_inflight = 4};
    start(c);
    /* One mount may hold 3 of the 4 places (its 3/4 share). */
    for (int i = 0; i < 20; i++)
        fs9_dispatcher_submit(d, &fake(i, 0, BLOCK)->w); /* never waits */
    WAIT_UNTIL(stats().running == 2);
    WAIT_UNTIL(stats().held == 17);
    struct fs9_dispatch_stats s = stats();
    cr_assert_eq(s.inflight, 3);
    cr_assert_eq(s.waiting, 18); /* 1 admitted + 17 held */
    cr_assert_eq(s.submit_waits, 0);
    /* A second mount takes the last place. */
    for (int i = 20; i < 30; i++)
        fs9_dispatcher_submit(d, &fake(i, 1, BLOCK)->w);
    WAIT_UNTIL(stats().inflight == 4);
    WAIT_UNTIL(stats().held == 26);
    for (int i = 0; i < 30; i++) {
        open_gate(&fakes[i]);
        cr_assert_leq(stats().inflight, 4);
    }
    for (int i = 0; i < 30; i++)
        WAIT_UNTIL(atomic_load(&fakes[i].destroyed));
    s = stats();
    cr_assert_leq(s.peak_inflight, 4);
    cr_assert_eq(s.completed, 30);
    /* Held works ran in the order they came, per mount. */
    stop(30);
}

struct submitter {
    struct fake *f;
    atomic_int returned;
};

static void *submit_thread(void *arg)
{
    struct submitter *s = arg;
    fs9_dispatcher_submit(d, &s->f->w);
    atomic_store(&s->returned, 1);
    return NULL;
}

Test(dispatch, submitters_wait_while_pending_works_exceed_the_memory_budget)
{
    struct fs9_dispatch_config c = {.threads = 2, .max_inflight = 64,
                                    .max_pending_bytes = 1000};
    start(c);
    struct fake *a = fake(0, 0, BLOCK), *b = fake(1, 0, BLOCK);
    a->w.cost = b->w.cost = 400;
    fs9_dispatcher_submit(d, &a->w);
    fs9_dispatcher_submit(d, &b->w);
    cr_assert_eq(stats().pending_bytes, 800);
    struct submitter s = {.f = fake(2, 1, QUICK)};
    s.f->w.cost = 400; /* 1200 > 1000: must wait */
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, submit_thread, &s), 0);
    WAIT_UNTIL(stats().submit_waits == 1);
    cr_assert_eq(atomic_load(&s.returned), 0, "submit did not wait");
    cr_assert_eq(atomic_load(&s.f->runs), 0);
    open_gate(a); /* 400 bytes come back: the waiter fits */
    WAIT_UNTIL(atomic_load(&s.returned));
    pthread_join(t, NULL);
    WAIT_UNTIL(atomic_load(&s.f->destroyed));
    cr_assert_eq(atomic_load(&s.f->err), 0);
    /* A single work bigger than the whole budget still goes through. */
    open_gate(b);
    WAIT_UNTIL(stats().pending_bytes == 0);
    struct fake *big = fake(3, 0, QUICK);
    big->w.cost = 5000;
    fs9_dispatcher_submit(d, &big->w);
    WAIT_UNTIL(atomic_load(&big->destroyed));
    stop(4);
}

Test(dispatch, a_mount_whose_calls_block_leaves_threads_and_room_to_others)
{
    /* 4 threads: a mount gets at most 3; 8 places: a mount at most 6. */
    struct fs9_dispatch_config c = {.threads = 4, .max_inflight = 8};
    start(c);
    for (int i = 0; i < 40; i++)
        fs9_dispatcher_submit(d, &fake(i, 0, BLOCK)->w);
    WAIT_UNTIL(stats().running == 3);
    WAIT_UNTIL(stats().inflight == 6);
    /* Mount 1's calls run and are answered while mount 0 hangs. */
    for (int i = 40; i < 60; i++)
        fs9_dispatcher_submit(d, &fake(i, 1, QUICK)->w);
    for (int i = 40; i < 60; i++)
        WAIT_UNTIL(atomic_load(&fakes[i].destroyed));
    for (int i = 0; i < 40; i++)
        cr_assert_eq(atomic_load(&fakes[i].answers), 0);
    cr_assert_eq(stats().running, 3);
    /* Two hanging mounts share the pool: the second gets the 4th thread
     * and the last two places. */
    for (int i = 60; i < 70; i++)
        fs9_dispatcher_submit(d, &fake(i, 2, BLOCK)->w);
    WAIT_UNTIL(stats().running == 4);
    WAIT_UNTIL(stats().inflight == 8);
    cr_assert_eq(atomic_load(&fakes[60].runs), 1);
    stop(70);
}

Test(dispatch, deadline_answers_etimedout_and_the_late_result_is_cleaned_up)
{
    struct fs9_dispatch_config c = {.threads = 2, .max_inflight = 1,
                                    .timeout = 0.2};
    start(c);
    struct fake *running = fake(0, 0, BLOCK);
    struct fake *held = fake(1, 0, BLOCK); /* no room: never admitted */
    fs9_dispatcher_submit(d, &running->w);
    fs9_dispatcher_submit(d, &held->w);
    WAIT_UNTIL(atomic_load(&running->answers) == 1);
    cr_assert_eq(atomic_load(&running->err), ETIMEDOUT);
    WAIT_UNTIL(atomic_load(&held->destroyed));
    cr_assert_eq(atomic_load(&held->err), ETIMEDOUT);
    cr_assert_eq(atomic_load(&held->runs), 0, "a timed-out held work ran");
    /* The running call comes back late: its claim fails and it cleans
     * up; nobody answers twice. */
    cr_assert_eq(atomic_load(&running->destroyed), 0);
    open_gate(running);
    WAIT_UNTIL(atomic_load(&running->destroyed));
    cr_assert_eq(atomic_load(&running->late), 1);
    cr_assert_eq(atomic_load(&running->answers), 1);
    struct fs9_dispatch_stats s = stats();
    cr_assert_eq(s.timeouts, 2);
    cr_assert_eq(s.inflight, 0);
    cr_assert_eq(s.held, 0);
    cr_assert_eq(s.waiting, 0);
    stop(2);
}

Test(dispatch, notify_wakes_parked_works_of_its_key_only)
{
    start(small);
    struct fake *k1 = fake(0, 0, PARK), *k2 = fake(1, 0, PARK);
    struct fake *other = fake(2, 1, PARK); /* same key, other mount */
    k1->key = 1;
    k2->key = 2;
    other->key = 1;
    fs9_dispatcher_submit(d, &k1->w);
    fs9_dispatcher_submit(d, &k2->w);
    fs9_dispatcher_submit(d, &other->w);
    WAIT_UNTIL(stats().parked == 3);
    cr_assert_eq(stats().inflight, 0, "parked works hold no place");
    cr_assert_eq(stats().pending_bytes, 0, "parked works cost no budget");
    atomic_store(&data[1], 1);
    fs9_dispatcher_notify(d, &mounts[0], 1);
    WAIT_UNTIL(atomic_load(&k1->destroyed));
    cr_assert_eq(atomic_load(&k1->runs), 2);
    cr_assert_eq(atomic_load(&k1->err), 0);
    /* Key 2 and the other mount's key 1 stay parked. */
    WAIT_UNTIL(stats().parked == 2);
    cr_assert_eq(atomic_load(&k2->answers), 0);
    cr_assert_eq(atomic_load(&other->answers), 0);
    /* Key 0 wakes everything parked on the mount. */
    atomic_store(&data[2], 1);
    fs9_dispatcher_notify(d, &mounts[0], 0);
    WAIT_UNTIL(atomic_load(&k2->destroyed));
    cr_assert_eq(atomic_load(&other->answers), 0);
    fs9_dispatcher_notify(d, &mounts[1], 1);
    WAIT_UNTIL(atomic_load(&other->destroyed));
    cr_assert_eq(stats().parks, 3);
    stop(3);
}

Test(dispatch, notify_between_no_data_and_park_is_not_lost)
{
    start(small);
    struct fake *f = fake(0, 0, PARK);
    f->key = 3;
    f->race_notify = 1;
    fs9_dispatcher_submit(d, &f->w);
    /* The stale sequence number makes the park a retry. */
    WAIT_UNTIL(atomic_load(&f->destroyed));
    cr_assert_eq(atomic_load(&f->runs), 2);
    cr_assert_eq(atomic_load(&f->err), 0);
    cr_assert_eq(stats().parks, 0);
    stop(1);
}

Test(dispatch, a_work_parked_inline_waits_for_notify)
{
    start(small);
    /* As the FUSE front does for a provider called inline: run on the
     * calling thread, then park. */
    struct fake *f = fake(0, 0, PARK);
    f->key = 1;
    cr_assert_eq(f->w.run(&f->w), FS9_WORK_PARK);
    fs9_dispatcher_park(d, &f->w);
    WAIT_UNTIL(stats().parked == 1);
    atomic_store(&data[1], 1);
    fs9_dispatcher_notify(d, &mounts[0], 1);
    WAIT_UNTIL(atomic_load(&f->destroyed));
    cr_assert_eq(atomic_load(&f->runs), 2);
    stop(1);
}

Test(dispatch, interrupts_are_answered_by_the_loop_exactly_once)
{
    struct fs9_dispatch_config c = {.threads = 2, .max_inflight = 1};
    start(c);
    struct fake *running = fake(0, 0, BLOCK);
    struct fake *held = fake(1, 0, BLOCK);
    struct fake *parked = fake(2, 1, PARK);
    parked->key = 1;
    for (int i = 0; i < 3; i++)
        fakes[i].w.flags = FS9_WORK_INTERRUPTIBLE;
    fs9_dispatcher_submit(d, &running->w);
    fs9_dispatcher_submit(d, &held->w);
    WAIT_UNTIL(stats().running == 1 && stats().held == 1);
    /* The parked one: run inline (max_inflight leaves no room) and park. */
    cr_assert_eq(parked->w.run(&parked->w), FS9_WORK_PARK);
    fs9_dispatcher_park(d, &parked->w);
    WAIT_UNTIL(stats().parked == 1);

    for (int i = 0; i < 3; i++) {
        fs9_work_interrupt(&fakes[i].w);
        fs9_work_interrupt(&fakes[i].w); /* a second notice changes nothing */
    }
    for (int i = 0; i < 3; i++) {
        WAIT_UNTIL(atomic_load(&fakes[i].answers) == 1);
        cr_assert_eq(atomic_load(&fakes[i].err), EINTR);
    }
    WAIT_UNTIL(atomic_load(&held->destroyed) && atomic_load(&parked->destroyed));
    cr_assert_eq(atomic_load(&held->runs), 0);
    cr_assert_eq(atomic_load(&parked->runs), 1);
    cr_assert_eq(stats().interrupts, 3);
    /* The running call finishes late and cleans up. */
    open_gate(running);
    WAIT_UNTIL(atomic_load(&running->destroyed));
    cr_assert_eq(atomic_load(&running->late), 1);
    stop(3);
}

struct drainer {
    atomic_int done;
};

static void *drain_thread(void *arg)
{
    fs9_dispatcher_drain(d);
    atomic_store(&((struct drainer *)arg)->done, 1);
    return NULL;
}

Test(dispatch, drain_answers_parked_work_with_zero_and_finishes_the_rest)
{
    struct fs9_dispatch_config c = {.threads = 2, .max_inflight = 1};
    start(c);
    struct fake *parked = fake(0, 1, PARK);
    parked->key = 2;
    fs9_dispatcher_submit(d, &parked->w);
    WAIT_UNTIL(stats().parked == 1);
    struct fake *running = fake(1, 0, BLOCK);
    struct fake *held = fake(2, 0, QUICK);
    fs9_dispatcher_submit(d, &running->w);
    fs9_dispatcher_submit(d, &held->w);
    WAIT_UNTIL(stats().running == 1 && stats().held == 1);

    struct drainer dr = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, drain_thread, &dr), 0);
    WAIT_UNTIL(atomic_load(&parked->answers) == 1);
    cr_assert_eq(atomic_load(&parked->err), 0, "parked work: EOF at drain");
    cr_assert_eq(atomic_load(&dr.done), 0, "drain left running work");
    open_gate(running);
    WAIT_UNTIL(atomic_load(&dr.done));
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&running->late), 0);
    cr_assert_eq(atomic_load(&running->err), 0);
    cr_assert_eq(atomic_load(&held->runs), 1, "held work finishes too");
    cr_assert_eq(atomic_load(&held->err), 0);

    /* After drain a submission is answered EIO, not lost. */
    struct fake *late = fake(3, 0, QUICK);
    fs9_dispatcher_submit(d, &late->w);
    cr_assert_eq(atomic_load(&late->err), EIO);
    cr_assert_eq(atomic_load(&late->runs), 0);
    stop(4);
}

/* ---- calls run inline on the request thread ---- */

/* The request thread of an inline call: run, give the slot back, free. */
static void *inline_thread(void *arg)
{
    struct fake *f = arg;
    f->w.run(&f->w);
    fs9_dispatcher_inline_end(d, &f->w);
    atomic_store(&f->destroyed, 1);
    return NULL;
}

Test(dispatch, inline_slots_are_bounded_per_mount_and_in_total)
{
    struct fs9_dispatch_config c = {.threads = 2, .max_inflight = 16,
                                    .mount_inline = 2, .max_inline = 3};
    start(c);
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fake(0, 0, QUICK)->w), 0);
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fake(1, 0, QUICK)->w), 0);
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fake(2, 0, QUICK)->w), -1,
                 "a third call of one mount goes to the pool");
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fake(3, 1, QUICK)->w), 0);
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fake(4, 1, QUICK)->w), -1,
                 "max_inline counts all mounts");
    fs9_dispatcher_inline_end(d, &fakes[0].w);
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fake(5, 0, QUICK)->w), 0,
                 "a slot given back is taken again");
    for (int i = 0; i < 6; i++) {
        if (i == 2 || i == 4) {
            fs9_dispatcher_submit(d, &fakes[i].w); /* the pool's */
            continue;
        }
        fakes[i].w.run(&fakes[i].w);
        fs9_dispatcher_inline_end(d, &fakes[i].w);
        atomic_store(&fakes[i].destroyed, 1);
    }
    WAIT_UNTIL(atomic_load(&fakes[2].destroyed) &&
               atomic_load(&fakes[4].destroyed));
    stop(6);
}

Test(dispatch, no_inline_call_overtakes_work_queued_for_its_mount)
{
    struct fs9_dispatch_config c = {.threads = 1, .max_inflight = 16,
                                    .mount_inline = 4, .max_inline = 8};
    start(c);
    fs9_dispatcher_submit(d, &fake(0, 0, BLOCK)->w); /* takes the thread */
    fs9_dispatcher_submit(d, &fake(1, 0, BLOCK)->w); /* queued behind it */
    WAIT_UNTIL(stats().running == 1 && stats().waiting == 1);
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fake(2, 0, QUICK)->w), -1,
                 "mount 0 has queued work");
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fake(3, 1, QUICK)->w), 0,
                 "mount 1 has none");
    fakes[3].w.run(&fakes[3].w);
    fs9_dispatcher_inline_end(d, &fakes[3].w);
    atomic_store(&fakes[3].destroyed, 1);
    open_gate(&fakes[0]);
    open_gate(&fakes[1]);
    WAIT_UNTIL(atomic_load(&fakes[1].destroyed));
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &fakes[2].w), 0,
                 "inline again once the queue is empty");
    fakes[2].w.run(&fakes[2].w);
    fs9_dispatcher_inline_end(d, &fakes[2].w);
    atomic_store(&fakes[2].destroyed, 1);
    stop(4);
}

Test(dispatch, an_inline_call_past_its_deadline_is_answered_etimedout)
{
    struct fs9_dispatch_config c = {.threads = 2, .max_inflight = 16,
                                    .mount_inline = 2, .max_inline = 4,
                                    .timeout = 0.1};
    start(c);
    struct fake *f = fake(0, 0, BLOCK);
    cr_assert_eq(fs9_dispatcher_inline_begin(d, &f->w), 0);
    pthread_t t;
    pthread_create(&t, NULL, inline_thread, f);
    WAIT_UNTIL(atomic_load(&f->answers) == 1);
    cr_assert_eq(atomic_load(&f->err), ETIMEDOUT);
    cr_assert_eq(stats().timeouts, 1);
    open_gate(f); /* the provider call returns at last */
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&f->late), 1, "the late result was cleaned up");
    cr_assert_eq(atomic_load(&f->answers), 1, "answered once");
    stop(1);
}

Test(dispatch, an_interrupt_never_answers_a_running_read_of_a_stateful_provider)
{
    start(small);
    /* A stream's read may already have moved its cursor past the bytes it
     * is about to return: EINTR then would lose them. */
    mounts[1].caps = FS9_CAP_STATEFUL_READ;
    struct fake *f = fake(0, 1, BLOCK);
    f->w.flags |= FS9_WORK_INTERRUPTIBLE;
    fs9_dispatcher_submit(d, &f->w);
    WAIT_UNTIL(atomic_load(&f->runs) == 1);
    fs9_work_interrupt(&f->w);
    usleep(100000); /* give the loop its chance to (wrongly) answer */
    cr_assert_eq(atomic_load(&f->answers), 0, "answered while running");
    open_gate(f);
    WAIT_UNTIL(atomic_load(&f->destroyed));
    cr_assert_eq(atomic_load(&f->err), 0, "the read's own answer");
    cr_assert_eq(atomic_load(&f->late), 0);
    /* Not yet running (queued behind a blocked call): interrupted. */
    struct fs9_dispatch_config one = {.threads = 1, .max_inflight = 8};
    stop(1);
    start(one);
    mounts[1].caps = FS9_CAP_STATEFUL_READ;
    fs9_dispatcher_submit(d, &fake(0, 1, BLOCK)->w);
    WAIT_UNTIL(stats().running == 1);
    struct fake *g = fake(1, 1, QUICK);
    g->w.flags |= FS9_WORK_INTERRUPTIBLE;
    fs9_dispatcher_submit(d, &g->w);
    WAIT_UNTIL(stats().waiting == 1);
    fs9_work_interrupt(&g->w);
    WAIT_UNTIL(atomic_load(&g->answers) == 1);
    cr_assert_eq(atomic_load(&g->err), EINTR);
    stop(2);
}
