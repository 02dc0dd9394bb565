//! The one thread that starts worker processes.
//!
//! A worker arms `PR_SET_PDEATHSIG`, which fires when the *thread* that spawned it ends, not
//! the process: a worker spawned from a JVM thread (a request thread of a pool, say) would be
//! killed when that thread is retired. So every worker is spawned from this thread, which the
//! proxy starts on first use and never ends.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

use crate::child::{Command, Running};

struct Job {
    program: RawFd,
    name: PathBuf,
    args: Vec<String>,
    fds: Vec<(RawFd, RawFd)>,
    reply: Sender<io::Result<Running>>,
}

static JOBS: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();

/// Spawns `program` (executed through its descriptor; `name` is its `argv[0]`) with `args`,
/// handing it each descriptor of `fds` at the number paired with it, from the spawning thread.
pub fn spawn(
    program: &File,
    name: &Path,
    args: &[String],
    fds: &[(BorrowedFd<'_>, RawFd)],
) -> io::Result<Running> {
    let jobs = JOBS.get_or_init(|| {
        let (sender, receiver) = channel::<Job>();
        let started = std::thread::Builder::new()
            .name("proxyso-spawner".into())
            .spawn(move || {
                // Ends only with the process: the sender lives in a static.
                for job in receiver {
                    let _ = job.reply.send(run(&job));
                }
            });
        if let Err(e) = started {
            // Every later spawn then fails with this: the channel has no receiver.
            crate::log::emit(crate::log::Record {
                level: crate::log::Level::Error,
                from_plugin: false,
                key: None,
                generation: 0,
                message: format!("cannot start the thread that spawns workers: {e}"),
            });
        }
        Mutex::new(sender)
    });
    let (reply, answer) = channel();
    let job = Job {
        program: program.as_raw_fd(),
        name: name.to_path_buf(),
        args: args.to_vec(),
        fds: fds.iter().map(|(fd, to)| (fd.as_raw_fd(), *to)).collect(),
        reply,
    };
    let sent = jobs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(job);
    if sent.is_err() {
        return Err(io::Error::other(
            "the thread that spawns workers is not running",
        ));
    }
    // The descriptors stay open (borrowed by this frame) until the answer is in.
    answer
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the spawning thread dropped the request")))
}

fn run(job: &Job) -> io::Result<Running> {
    // SAFETY: the requester borrows every descriptor for as long as it waits for this answer,
    // so they are open for the whole spawn.
    let borrow = |fd: RawFd| unsafe { BorrowedFd::borrow_raw(fd) };
    let program = borrow(job.program);
    let mut command = Command::from_fd(program, &job.name);
    for arg in &job.args {
        command = command.arg(arg);
    }
    for (fd, to) in &job.fds {
        command = command.fd_as(borrow(*fd), *to);
    }
    command.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::End;

    #[test]
    fn spawns_from_one_long_lived_thread() {
        let sh = File::open("/bin/sh").unwrap();
        let args = ["-c".to_owned(), "exit $(( PPID > 0 ? 5 : 6 ))".to_owned()];
        let first = spawn(&sh, Path::new("/bin/sh"), &args, &[]).unwrap();
        assert_eq!(first.wait_end().unwrap(), End::Exited(5));
        // A second spawn from another thread goes through the same spawning thread, which
        // is still there after the first requester is gone.
        let second = std::thread::spawn(move || {
            let sh = File::open("/bin/sh").unwrap();
            spawn(&sh, Path::new("/bin/sh"), &args, &[]).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(second.wait_end().unwrap(), End::Exited(5));
    }
}
