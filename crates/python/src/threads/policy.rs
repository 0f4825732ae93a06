//! The Python pool's decisions, kept apart from the code that carries them out: when a queued job
//! wakes a thread and how many, when the watchdog steps in, when it may sleep, when a thread
//! leaves, when results go back to the loop. Every function here takes what the pool can observe
//! (queue length and ages in ticks, thread counts, the slow-job history, calls finished recently)
//! and returns what to do; no threads, locks, clocks or interpreter, so each rule has a unit test.
//! [`super`] reads its state under its lock, asks, and acts (unparking, spawning, waking the loop).
//!
//! Why the rules are what they are is told in [`super`]'s module doc and bench/NOTES.md; the
//! constants below are tuned against the benchmark and worth re-measuring before changing.

/// A job during which the watchdog ticked this often (at least one whole tick: about 1 ms of wall
/// time) counts as slow. Ticks, not clock reads: the hot path reads no clock.
pub const SLOW_JOB_TICKS: u64 = 2;
/// Slow jobs among the last eight that mark the application as blocking.
pub const SLOW_JOBS_TO_BLOCK: u32 = 3;
/// With blocking calls, a new job waits for a thread finishing its call (instead of waking one)
/// when calls have been ending at least this often per tick.
pub const FINISHERS_TO_WAIT_FOR: u64 = 8;
/// The window over which that rate is counted: calls end in bursts (as the interpreter lock
/// passes from one returning thread to the next), so one tick alone says little.
pub const RECENT_TICKS: u64 = 8;
/// With blocking calls, the watchdog wakes at most this many threads per tick for jobs that waited
/// a tick while calls still end (2 left a backlog standing, 8 and 16 flooded the CPU with woken
/// threads; bench/NOTES.md).
pub const DRAIN_PER_TICK: usize = 4;
/// The watchdog sleeps for good after this many ticks with nothing to do.
pub const WATCHDOG_QUIET_TICKS: u32 = 200;
/// The watchdog delivers results that waited this many ticks for their batch to end.
pub const STALE_RESULT_TICKS: u64 = 2;

/// The interpreter counts as saturated once the pool's jobs together used at least this share of
/// a window's wall time in CPU (the process's, less the event loop's and the watchdog's)...
pub const SATURATED_SHARE: f64 = 0.8;
/// ...and stops counting as such when they use less than this share (a gap between the two, so a
/// window that ends between two long calls does not flip it).
pub const UNSATURATED_SHARE: f64 = 0.3;
/// ...and only when the calls measured in the window used at least this much CPU each on
/// average: calls that mostly wait (a `sleep`, a slow query) need a thread each to wait in, even
/// when so many of them run that their short bursts of CPU fill the core.
pub const HEAVY_CALL_CPU: std::time::Duration = std::time::Duration::from_millis(1);
/// The window, in watchdog ticks, over which that share is measured; it slides, judged again at
/// every tick. Short, so a computing application is capped before a burst of its calls has
/// started a thread each: with a fixed window of 128 ticks, a Django worker at 64 connections
/// reached 64 threads first (its first call, importing and compiling for 100 ms, left every
/// other request waiting whole ticks) and kept the memory of those 64 concurrent requests:
/// 66 MB against 52 MB with four threads.
pub const SATURATION_TICKS: usize = 8;
/// While the interpreter is saturated, at most this many threads are awake: more cannot make
/// calls end sooner (they wait for the same interpreter lock), and they take turns on it in
/// 5 ms slices, so every call takes as long as the slowest (a Django view at c=64: p99 1 s).
/// A few rather than one: a call still waits on files and sockets now and then.
pub const SATURATED_THREADS: usize = 4;
/// A tick counts as one in which the calls computed when they used at least this share of its
/// wall time in CPU: then a call that holds everything up is computing, not waiting.
pub const COMPUTING_SHARE: f64 = 0.3;

/// Whether each of the last jobs was slow: one bit per job, the latest lowest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlowJobs(pub u32);

impl SlowJobs {
    /// The history after a job that lasted `ticks` watchdog ticks.
    pub fn after_job(self, ticks: u64) -> SlowJobs {
        SlowJobs((self.0 << 1) | u32::from(ticks >= SLOW_JOB_TICKS))
    }

    /// The application blocks: [`SLOW_JOBS_TO_BLOCK`] or more of the last eight jobs were slow.
    pub fn calls_block(self) -> bool {
        (self.0 & 0xFF).count_ones() >= SLOW_JOBS_TO_BLOCK
    }
}

/// The pool's threads, as counted under its lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Threads {
    /// Alive, or asked for and about to be started.
    pub total: usize,
    /// Awake: in a job or about to look at the queue (threads about to be started included).
    pub running: usize,
    /// Of the running ones, those inside a job.
    pub in_job: usize,
    /// Asleep, waiting to be woken.
    pub idle: usize,
}

impl Threads {
    /// Awake threads out of a job: each will take a queued job without being woken.
    fn spare(self) -> usize {
        self.running.saturating_sub(self.in_job)
    }
}

/// Threads to get going: sleeping ones to wake, new ones to start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wakeups {
    /// Sleeping threads to unpark (never more than are asleep).
    pub wake: usize,
    /// New threads to start (never past `--threads`).
    pub start: usize,
}

/// What `submit` does once its job is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSubmit {
    /// Nothing: an awake thread, a scheduled wake-up, a finishing call or the watchdog will see
    /// to the job.
    Nothing,
    /// Schedule one wake-up at the end of the loop's current turn (behind the connections that
    /// became ready together), so a burst wakes one thread, not one per job.
    WakeAfterTurn,
    /// Get these threads going now: the application blocks and batching would only make jobs
    /// wait behind sleeping calls.
    Wake(Wakeups),
}

/// Calls ending and queued jobs, as the watchdog sees them at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Jobs queued at least one tick ago.
    pub a_tick: usize,
    /// Jobs queued two ticks ago or earlier: they waited at least one whole tick.
    pub a_whole_tick: usize,
}

impl Waiting {
    /// Counts the waiting jobs at tick `now`, given the ticks they were queued at, oldest first.
    pub fn at(now: u64, queued_at: impl IntoIterator<Item = u64>) -> Waiting {
        let mut waiting = Waiting::default();
        for queued in queued_at {
            let waited = now.saturating_sub(queued);
            if waited < 1 {
                break;
            }
            waiting.a_tick += 1;
            if waited >= 2 {
                waiting.a_whole_tick += 1;
            }
        }
        waiting
    }
}

/// The watchdog's memory between ticks: calls finished so far, per recent tick, and how long
/// the pool has been quiet.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Calls finished, ever, at the last tick.
    finished_before: u64,
    /// Calls finished during each of the last [`RECENT_TICKS`] ticks (a ring indexed by tick).
    recent: [u64; RECENT_TICKS as usize],
    /// Ticks in a row with no job queued or running.
    quiet_ticks: u32,
}

/// What one tick learned about progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// No call finished since the last tick: queued jobs cannot count on a finishing thread.
    pub stuck: bool,
    /// The calls used at least [`COMPUTING_SHARE`] of the time since the last tick in CPU.
    pub computed: bool,
    /// Calls finished during the last [`RECENT_TICKS`] ticks.
    pub finished_recently: u64,
}

impl Progress {
    /// At tick `now`, with `finished` calls finished ever.
    /// `computed`: whether the calls computed since the last tick ([`calls_computed`]).
    pub fn tick(&mut self, now: u64, finished: u64, computed: bool) -> Tick {
        let during = finished.wrapping_sub(self.finished_before);
        self.finished_before = finished;
        self.recent[(now % RECENT_TICKS) as usize] = during;
        Tick {
            stuck: during == 0,
            computed,
            finished_recently: self.recent.iter().sum(),
        }
    }

    /// After a tick's wake-ups: whether the watchdog may sleep until the next job, which it does
    /// after [`WATCHDOG_QUIET_TICKS`] ticks in a row with no job queued and no thread awake.
    pub fn may_sleep(&mut self, queued: usize, threads: Threads) -> bool {
        if queued == 0 && threads.running == 0 {
            self.quiet_ticks += 1;
        } else {
            self.quiet_ticks = 0;
        }
        if self.quiet_ticks >= WATCHDOG_QUIET_TICKS {
            self.quiet_ticks = 0;
            return true;
        }
        false
    }
}

/// The pool's rules; `max_threads` is `--threads`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    max_threads: usize,
}

impl Policy {
    pub fn new(max_threads: usize) -> Policy {
        Policy { max_threads }
    }

    /// A job was just queued; `queued` counts it. `finished_recently` is the watchdog's last
    /// count of calls ended over [`RECENT_TICKS`] ticks; `wake_scheduled`: an end-of-turn wake-up
    /// is already on its way.
    pub fn on_submit(
        self,
        queued: usize,
        threads: Threads,
        slow: SlowJobs,
        finished_recently: u64,
        wake_scheduled: bool,
    ) -> OnSubmit {
        if slow.calls_block() {
            // A thread for every job that no awake, job-free thread will take, unless calls end
            // often enough that a thread finishing its call takes this job within a fraction of a
            // tick (the watchdog covers a job that waits a whole tick anyway). A finishing thread
            // holds the interpreter already: taking the job costs no wake-up and no lock hand-off.
            let needed = queued.saturating_sub(threads.spare());
            let finishing_per_tick = finished_recently / RECENT_TICKS;
            if needed > 0 && finishing_per_tick < FINISHERS_TO_WAIT_FOR {
                return OnSubmit::Wake(self.wakeups(needed, threads));
            }
            OnSubmit::Nothing
        } else if threads.running == 0 && !wake_scheduled {
            OnSubmit::WakeAfterTurn
        } else {
            OnSubmit::Nothing
        }
    }

    /// The end-of-turn wake-up: one thread, if jobs still wait and no thread woke meanwhile.
    pub fn at_end_of_turn(self, queued: usize, threads: Threads) -> Wakeups {
        if threads.running == 0 && queued > 0 {
            self.wakeups(1, threads)
        } else {
            Wakeups::default()
        }
    }

    /// The watchdog's tick: threads to get going for jobs that wait.
    /// - No call ended for a whole tick, and the calls waited (little CPU used): a thread for
    ///   each job that waited a whole tick and no spare thread will take. If they computed
    ///   instead, one thread, which takes the waiting jobs in a batch and gets its turn on the
    ///   interpreter (the next tick adds another if it is stuck too): a thread per job there
    ///   started 63 threads while a Django worker's first call imported and compiled for 100 ms,
    ///   all of them computing once it ended. (One thread whatever the CPU did was tried: in the
    ///   mixed app, whose threads all sleep in `/slow` now and then, the one thread soon took a
    ///   `/slow` job too, and `/fast` fell from 38-44k to 27k req/s.)
    /// - Calls end, but the application blocks: a backlog that waits a tick stands (as many jobs
    ///   arrive as calls end), so at most [`DRAIN_PER_TICK`] threads for it each tick.
    /// - Otherwise none: the interpreter is busy, and more threads would only queue for it.
    pub fn on_tick(
        self,
        tick: Tick,
        waiting: Waiting,
        threads: Threads,
        slow: SlowJobs,
    ) -> Wakeups {
        let needed = if tick.stuck {
            let needed = waiting.a_whole_tick.saturating_sub(threads.spare());
            if tick.computed {
                needed.min(1)
            } else {
                needed
            }
        } else if slow.calls_block() {
            waiting
                .a_tick
                .saturating_sub(threads.spare())
                .min(DRAIN_PER_TICK)
        } else {
            0
        };
        self.wakeups(needed, threads)
    }

    /// Up to `count` threads going: sleeping ones first, then new ones while under `--threads`.
    pub fn wakeups(self, count: usize, threads: Threads) -> Wakeups {
        let wake = count.min(threads.idle);
        let room = self.max_threads.saturating_sub(threads.total);
        Wakeups {
            wake,
            start: (count - wake).min(room),
        }
    }

    /// `wakeups` as they may be while the interpreter is `saturated`: no more threads awake
    /// than [`SATURATED_THREADS`] (waking none is never needed then: awake threads take the
    /// queued jobs as they finish their calls).
    pub fn within_saturation(self, wakeups: Wakeups, threads: Threads, saturated: bool) -> Wakeups {
        if !saturated {
            return wakeups;
        }
        let room = SATURATED_THREADS.saturating_sub(threads.running);
        let wake = wakeups.wake.min(room);
        Wakeups {
            wake,
            start: wakeups.start.min(room - wake),
        }
    }

    /// A thread that just finished its call takes the next queued job, unless the interpreter
    /// is saturated and `in_job` other threads (this one no longer counted) are already in calls:
    /// then it sleeps, and the pool shrinks to [`SATURATED_THREADS`] in calls.
    pub fn takes_next_job(self, in_job: usize, saturated: bool) -> bool {
        !saturated || in_job < SATURATED_THREADS
    }

    /// A thread idle for the idle timeout leaves, unless it is the last one.
    pub fn exits_when_idle(self, threads: Threads) -> bool {
        threads.total > 1
    }
}

/// Whether the interpreter is saturated after a window in which `calls` calls ended, having used
/// `job_cpu` of CPU time over `wall`, given whether it was before the window (see
/// [`SATURATED_SHARE`] and [`HEAVY_CALL_CPU`]). A window in which no call ended counts as one
/// call: whatever used its CPU is still computing.
pub fn interpreter_saturated(
    was: bool,
    job_cpu: std::time::Duration,
    calls: u64,
    wall: std::time::Duration,
) -> bool {
    let calls = u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
    let heavy = job_cpu >= HEAVY_CALL_CPU * calls;
    let share = job_cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9);
    let threshold = if was {
        UNSATURATED_SHARE
    } else {
        SATURATED_SHARE
    };
    heavy && share >= threshold
}

/// Whether calls that used `job_cpu` of CPU over `wall` were computing rather than waiting (see
/// [`COMPUTING_SHARE`]).
pub fn calls_computed(job_cpu: std::time::Duration, wall: std::time::Duration) -> bool {
    job_cpu.as_secs_f64() >= COMPUTING_SHARE * wall.as_secs_f64()
}

/// How old the collected results must be (in ticks) for a thread about to start a job to hand
/// them to the loop first; None: whatever their age. Results of earlier jobs wait at most about
/// a tick for the batch to end; but when calls block, the next job may take long.
pub fn results_age_before_job(slow: SlowJobs) -> Option<u64> {
    if slow.calls_block() {
        None
    } else {
        Some(1)
    }
}

/// Collected results are due for the loop: some exist (added at tick `since`) and they are at
/// least `min_age` ticks old at tick `now` (any age if None).
pub fn results_due(since: Option<u64>, now: u64, min_age: Option<u64>) -> bool {
    match (since, min_age) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(since), Some(age)) => now.saturating_sub(since) >= age,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCKING: SlowJobs = SlowJobs(0b111);
    const FAST: SlowJobs = SlowJobs(0);

    fn threads(total: usize, running: usize, in_job: usize, idle: usize) -> Threads {
        Threads {
            total,
            running,
            in_job,
            idle,
        }
    }

    fn history(durations: &[u64]) -> SlowJobs {
        durations
            .iter()
            .fold(SlowJobs::default(), |slow, &ticks| slow.after_job(ticks))
    }

    #[test]
    fn saturation_turns_on_at_four_fifths_and_off_below_a_third() {
        let ms = std::time::Duration::from_millis;
        assert!(!interpreter_saturated(false, ms(20), 5, ms(32)));
        assert!(interpreter_saturated(false, ms(26), 5, ms(32)));
        assert!(interpreter_saturated(true, ms(20), 5, ms(32)));
        assert!(!interpreter_saturated(true, ms(9), 5, ms(32)));
        assert!(!interpreter_saturated(false, ms(0), 0, ms(0)));
    }

    #[test]
    fn calls_that_mostly_wait_never_saturate_the_interpreter() {
        let ms = std::time::Duration::from_millis;
        // 1,000 sleeping calls whose 30 us of CPU each fill the core: they need their threads.
        assert!(!interpreter_saturated(false, ms(30), 1000, ms(32)));
        assert!(!interpreter_saturated(true, ms(30), 1000, ms(32)));
        // Eight calls of 3.5 ms of CPU each: a view that computes.
        assert!(interpreter_saturated(false, ms(28), 8, ms(32)));
    }

    #[test]
    fn a_tick_counts_as_computed_from_a_third_of_its_time() {
        let us = std::time::Duration::from_micros;
        assert!(calls_computed(us(900), us(1000)));
        assert!(calls_computed(us(300), us(1000)));
        assert!(!calls_computed(us(100), us(1000)));
    }

    #[test]
    fn a_call_computing_through_the_window_saturates_the_interpreter() {
        let ms = std::time::Duration::from_millis;
        // No call ended, the CPU busy: a first call importing and compiling.
        assert!(interpreter_saturated(false, ms(7), 0, ms(8)));
        // No call ended and the CPU idle: calls that wait.
        assert!(!interpreter_saturated(false, ms(1), 0, ms(8)));
    }

    #[test]
    fn a_saturated_interpreter_gets_no_more_than_a_few_threads_awake() {
        let policy = Policy::new(64);
        let asked = Wakeups {
            wake: 10,
            start: 20,
        };
        // Not saturated: as asked.
        assert_eq!(
            policy.within_saturation(asked, threads(12, 2, 2, 10), false),
            asked
        );
        // Saturated with two awake: two more, sleeping ones first.
        assert_eq!(
            policy.within_saturation(asked, threads(12, 2, 2, 10), true),
            Wakeups { wake: 2, start: 0 }
        );
        assert_eq!(
            policy.within_saturation(Wakeups { wake: 1, start: 5 }, threads(3, 1, 1, 1), true),
            Wakeups { wake: 1, start: 2 }
        );
        // Already at the limit: none; with none awake, a job still gets a thread.
        assert_eq!(
            policy.within_saturation(asked, threads(64, 40, 40, 0), true),
            Wakeups::default()
        );
        assert_eq!(
            policy.within_saturation(Wakeups { wake: 1, start: 0 }, threads(5, 0, 0, 5), true),
            Wakeups { wake: 1, start: 0 }
        );
    }

    #[test]
    fn a_finishing_thread_steps_aside_while_the_interpreter_is_saturated_and_others_run() {
        let policy = Policy::new(64);
        assert!(policy.takes_next_job(40, false));
        assert!(!policy.takes_next_job(SATURATED_THREADS, true));
        assert!(policy.takes_next_job(SATURATED_THREADS - 1, true));
        assert!(policy.takes_next_job(0, true));
    }

    #[test]
    fn a_job_spanning_two_ticks_is_slow_and_one_tick_is_not() {
        assert_eq!(SlowJobs(0).after_job(1), SlowJobs(0));
        assert_eq!(SlowJobs(0).after_job(SLOW_JOB_TICKS), SlowJobs(1));
        assert_eq!(SlowJobs(0b1).after_job(0), SlowJobs(0b10));
    }

    #[test]
    fn three_slow_jobs_among_the_last_eight_mark_the_app_as_blocking() {
        assert!(!history(&[5, 0, 5, 0, 0, 0]).calls_block());
        assert!(history(&[5, 0, 5, 0, 5, 0, 0, 0]).calls_block());
    }

    #[test]
    fn slow_jobs_older_than_the_last_eight_are_forgotten() {
        let old_slow = history(&[5, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(!old_slow.calls_block());
        assert!(history(&[5, 5, 5, 0, 0, 0, 0, 0]).calls_block());
    }

    #[test]
    fn a_preempted_fast_job_now_and_then_does_not_make_the_app_blocking() {
        // Two slow jobs in every eight: still batched.
        let slow = history(&[0, 0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 0]);
        assert!(!slow.calls_block());
    }

    #[test]
    fn a_fast_app_schedules_one_wake_up_per_burst() {
        let policy = Policy::new(8);
        let asleep = threads(1, 0, 0, 1);
        assert_eq!(
            policy.on_submit(1, asleep, FAST, 0, false),
            OnSubmit::WakeAfterTurn
        );
        // Later jobs of the burst ride on the scheduled wake-up.
        assert_eq!(
            policy.on_submit(2, asleep, FAST, 0, true),
            OnSubmit::Nothing
        );
    }

    #[test]
    fn a_fast_app_wakes_nothing_while_a_thread_is_awake() {
        let policy = Policy::new(8);
        let busy = threads(1, 1, 1, 0);
        assert_eq!(policy.on_submit(5, busy, FAST, 0, false), OnSubmit::Nothing);
    }

    #[test]
    fn the_end_of_turn_wakes_one_thread_unless_one_woke_meanwhile() {
        let policy = Policy::new(8);
        assert_eq!(
            policy.at_end_of_turn(30, threads(2, 0, 0, 2)),
            Wakeups { wake: 1, start: 0 }
        );
        assert_eq!(
            policy.at_end_of_turn(30, threads(0, 0, 0, 0)),
            Wakeups { wake: 0, start: 1 }
        );
        assert_eq!(
            policy.at_end_of_turn(30, threads(2, 1, 0, 1)),
            Wakeups::default()
        );
        // Its job already taken by a thread that then went back to sleep.
        assert_eq!(
            policy.at_end_of_turn(0, threads(2, 0, 0, 2)),
            Wakeups::default()
        );
    }

    #[test]
    fn a_blocking_app_gets_a_thread_per_queued_job_at_once() {
        let policy = Policy::new(64);
        // Four sleeping threads, three queued jobs, all four calls in progress.
        assert_eq!(
            policy.on_submit(3, threads(8, 4, 4, 4), BLOCKING, 0, false),
            OnSubmit::Wake(Wakeups { wake: 3, start: 0 })
        );
        // Not enough sleepers: the rest are started.
        assert_eq!(
            policy.on_submit(6, threads(8, 4, 4, 4), BLOCKING, 0, false),
            OnSubmit::Wake(Wakeups { wake: 4, start: 2 })
        );
    }

    #[test]
    fn a_blocking_app_wakes_no_thread_for_a_job_a_spare_awake_thread_will_take() {
        let policy = Policy::new(64);
        // Two awake threads out of a job, two queued jobs.
        assert_eq!(
            policy.on_submit(2, threads(4, 3, 1, 1), BLOCKING, 0, false),
            OnSubmit::Nothing
        );
        assert_eq!(
            policy.on_submit(3, threads(4, 3, 1, 1), BLOCKING, 0, false),
            OnSubmit::Wake(Wakeups { wake: 1, start: 0 })
        );
    }

    #[test]
    fn under_load_a_blocking_app_leaves_the_job_to_a_finishing_thread() {
        let policy = Policy::new(256);
        let busy = threads(256, 250, 250, 6);
        let enough = FINISHERS_TO_WAIT_FOR * RECENT_TICKS;
        assert_eq!(
            policy.on_submit(1, busy, BLOCKING, enough, false),
            OnSubmit::Nothing
        );
        assert_eq!(
            policy.on_submit(1, busy, BLOCKING, enough - 1, false),
            OnSubmit::Wake(Wakeups { wake: 1, start: 0 })
        );
    }

    #[test]
    fn threads_are_never_started_past_the_cap() {
        let policy = Policy::new(4);
        assert_eq!(
            policy.on_submit(10, threads(3, 3, 3, 0), BLOCKING, 0, false),
            OnSubmit::Wake(Wakeups { wake: 0, start: 1 })
        );
        assert_eq!(
            policy.on_submit(10, threads(4, 4, 4, 0), BLOCKING, 0, false),
            OnSubmit::Wake(Wakeups::default())
        );
        assert_eq!(
            policy.wakeups(10, threads(4, 2, 2, 2)),
            Wakeups { wake: 2, start: 0 }
        );
    }

    #[test]
    fn sleeping_threads_are_woken_before_new_ones_start() {
        let policy = Policy::new(16);
        assert_eq!(
            policy.wakeups(5, threads(6, 3, 3, 3)),
            Wakeups { wake: 3, start: 2 }
        );
        assert_eq!(
            policy.wakeups(2, threads(6, 3, 3, 3)),
            Wakeups { wake: 2, start: 0 }
        );
    }

    #[test]
    fn waiting_counts_the_oldest_jobs_by_the_ticks_they_waited() {
        assert_eq!(
            Waiting::at(10, [7, 8, 9, 9, 10, 10]),
            Waiting {
                a_tick: 4,
                a_whole_tick: 2
            }
        );
        assert_eq!(Waiting::at(10, [10, 3]), Waiting::default());
        assert_eq!(Waiting::at(0, []), Waiting::default());
    }

    #[test]
    fn progress_is_stuck_when_no_call_ended_since_the_last_tick() {
        let mut progress = Progress::default();
        assert!(!progress.tick(1, 3, false).stuck);
        assert!(progress.tick(2, 3, false).stuck);
        assert!(!progress.tick(3, 4, false).stuck);
    }

    #[test]
    fn progress_counts_calls_ended_over_the_last_eight_ticks() {
        let mut progress = Progress::default();
        let mut finished = 0;
        for now in 1..=RECENT_TICKS {
            finished += 10;
            assert_eq!(
                progress.tick(now, finished, false).finished_recently,
                10 * now
            );
        }
        // The ninth tick pushes the first one out of the window.
        assert_eq!(
            progress
                .tick(RECENT_TICKS + 1, finished + 2, false)
                .finished_recently,
            10 * (RECENT_TICKS - 1) + 2
        );
    }

    #[test]
    fn the_watchdog_does_nothing_for_a_fast_app_whose_calls_end() {
        let policy = Policy::new(8);
        let moving = Tick {
            stuck: false,
            computed: false,
            finished_recently: 100,
        };
        let waiting = Waiting {
            a_tick: 20,
            a_whole_tick: 10,
        };
        assert_eq!(
            policy.on_tick(moving, waiting, threads(1, 1, 1, 0), FAST),
            Wakeups::default()
        );
    }

    #[test]
    fn when_no_call_ends_for_a_tick_the_watchdog_gives_each_job_that_waited_a_whole_tick_a_thread()
    {
        let policy = Policy::new(8);
        let stuck = Tick {
            stuck: true,
            computed: false,
            finished_recently: 0,
        };
        let waiting = Waiting {
            a_tick: 5,
            a_whole_tick: 3,
        };
        // One thread is stuck in a call that waits, in a fast or a blocking app; one sleeps.
        for slow in [FAST, BLOCKING] {
            assert_eq!(
                policy.on_tick(stuck, waiting, threads(2, 1, 1, 1), slow),
                Wakeups { wake: 1, start: 2 }
            );
        }
        // A call that computes holds them up: one thread, which takes the jobs in a batch.
        let computing = Tick {
            computed: true,
            ..stuck
        };
        for slow in [FAST, BLOCKING] {
            assert_eq!(
                policy.on_tick(computing, waiting, threads(2, 1, 1, 1), slow),
                Wakeups { wake: 1, start: 0 }
            );
            assert_eq!(
                policy.on_tick(computing, waiting, threads(1, 1, 1, 0), slow),
                Wakeups { wake: 0, start: 1 }
            );
        }
        // Jobs that waited less than a whole tick get nothing yet.
        let young = Waiting {
            a_tick: 5,
            a_whole_tick: 0,
        };
        assert_eq!(
            policy.on_tick(stuck, young, threads(2, 1, 1, 1), FAST),
            Wakeups::default()
        );
        // A spare awake thread counts against the jobs.
        assert_eq!(
            policy.on_tick(stuck, waiting, threads(3, 2, 1, 1), FAST),
            Wakeups { wake: 1, start: 1 }
        );
    }

    #[test]
    fn while_calls_end_the_watchdog_drains_a_blocking_backlog_a_few_threads_per_tick() {
        let policy = Policy::new(256);
        let moving = Tick {
            stuck: false,
            computed: false,
            finished_recently: 200,
        };
        let backlog = Waiting {
            a_tick: 30,
            a_whole_tick: 10,
        };
        let busy = threads(220, 220, 220, 0);
        assert_eq!(
            policy.on_tick(moving, backlog, busy, BLOCKING),
            Wakeups {
                wake: 0,
                start: DRAIN_PER_TICK
            }
        );
        let small = Waiting {
            a_tick: 2,
            a_whole_tick: 0,
        };
        assert_eq!(
            policy.on_tick(moving, small, threads(226, 221, 220, 5), BLOCKING),
            Wakeups { wake: 1, start: 0 }
        );
        // At the cap nothing more starts.
        assert_eq!(
            policy.on_tick(moving, backlog, threads(256, 256, 256, 0), BLOCKING),
            Wakeups::default()
        );
    }

    #[test]
    fn the_watchdog_sleeps_after_enough_quiet_ticks_and_counts_again_after() {
        let mut progress = Progress::default();
        let quiet = threads(1, 0, 0, 1);
        for _ in 1..WATCHDOG_QUIET_TICKS {
            assert!(!progress.may_sleep(0, quiet));
        }
        assert!(progress.may_sleep(0, quiet));
        assert!(!progress.may_sleep(0, quiet));
    }

    #[test]
    fn any_job_or_awake_thread_restarts_the_quiet_count() {
        let mut progress = Progress::default();
        let quiet = threads(1, 0, 0, 1);
        for _ in 1..WATCHDOG_QUIET_TICKS {
            progress.may_sleep(0, quiet);
        }
        assert!(!progress.may_sleep(1, quiet));
        for _ in 1..WATCHDOG_QUIET_TICKS {
            assert!(!progress.may_sleep(0, quiet));
        }
        assert!(!progress.may_sleep(0, threads(1, 1, 0, 0)));
    }

    #[test]
    fn an_idle_thread_exits_unless_it_is_the_last() {
        let policy = Policy::new(8);
        assert!(policy.exits_when_idle(threads(2, 0, 0, 2)));
        assert!(!policy.exits_when_idle(threads(1, 0, 0, 1)));
    }

    #[test]
    fn results_wait_for_the_batch_unless_calls_block() {
        assert_eq!(results_age_before_job(FAST), Some(1));
        assert_eq!(results_age_before_job(BLOCKING), None);
        assert!(!results_due(None, 5, None));
        assert!(results_due(Some(5), 5, None));
        assert!(!results_due(Some(5), 5, Some(1)));
        assert!(results_due(Some(4), 5, Some(1)));
        assert!(!results_due(Some(4), 5, Some(STALE_RESULT_TICKS)));
        assert!(results_due(Some(3), 5, Some(STALE_RESULT_TICKS)));
    }
}
