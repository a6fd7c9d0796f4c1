//! The script commands (RFC 5804 §2.5–2.12) against the store. Each runs
//! as a store job and comes back as a typed [`Answer`]; the event loop
//! never waits. Scripts are compiled (`mailsieve::compile`) on a reader
//! thread, and only a script that compiles goes on to the writer: a
//! PUTSCRIPT of a bad script is answered `NO` with the compiler's
//! message, and nothing is stored or activated.

use crate::parse::Command;
use crate::response::{Answer, Code, Data, Status};
use crate::session::{SieveDone, SieveSession};
use mailstore::{StoreError, User, MAX_SCRIPTS, MAX_SCRIPT_SIZE};
use netloop::{Completer, Io};

/// The answer to a store failure.
fn store_error(e: &StoreError) -> Status {
    match e {
        StoreError::NotFound(_) => {
            Status::no_code(Code::NonExistent, "There is no script by that name")
        }
        StoreError::Exists(_) => {
            Status::no_code(Code::AlreadyExists, "A script by that name already exists")
        }
        StoreError::Invalid(why) => Status::no(why.clone()),
        StoreError::Full(_) => Status::no_code(Code::Quota, "Not enough disk space"),
        other => {
            log::error!("ManageSieve: store failure: {other}");
            Status::no_code(
                Code::TryLater,
                "The mail store is unavailable; try again later",
            )
        }
    }
}

fn too_big(size: u64) -> Status {
    Status::no_code(
        Code::QuotaMaxSize,
        format!("A script may have at most {MAX_SCRIPT_SIZE} octets, not {size}"),
    )
}

fn too_many() -> Status {
    Status::no_code(
        Code::QuotaMaxScripts,
        format!("At most {MAX_SCRIPTS} scripts per user: delete one first"),
    )
}

/// Send the answer of a finished job back to the session.
fn reply(completer: &Completer<SieveDone>, result: mailstore::Result<Answer>) {
    let answer = result.unwrap_or_else(|e| Answer::status(store_error(&e)));
    completer.complete(SieveDone::Answer(answer));
}

fn ok(text: &str) -> Answer {
    Answer::status(Status::ok(text))
}

/// Room for one more script named `name`: `Err` with the refusal if the
/// user has [`MAX_SCRIPTS`] others.
fn room_for(
    r: &mailstore::Reader,
    user: mailstore::UserId,
    name: &str,
) -> mailstore::Result<Result<(), Status>> {
    let scripts = r.sieve_scripts(user)?;
    if !scripts.iter().any(|s| s.name == name) && scripts.len() >= MAX_SCRIPTS {
        return Ok(Err(too_many()));
    }
    Ok(Ok(()))
}

impl SieveSession {
    /// Run a script command for the authenticated `user`.
    pub(crate) fn execute(&mut self, io: &mut Io<'_, SieveDone>, user: &User, cmd: Command) {
        let uid = user.id;
        let completer = io.completer();
        let store = self.shared.store.clone();
        match cmd {
            Command::HaveSpace { name, size } => {
                if size > MAX_SCRIPT_SIZE as u64 {
                    self.status(io, too_big(size));
                    return;
                }
                store.read(
                    move |r| {
                        Ok(match room_for(r, uid, &name)? {
                            Ok(()) => ok(""),
                            Err(s) => Answer::status(s),
                        })
                    },
                    move |res| reply(&completer, res),
                );
            }
            Command::PutScript { name, script } => {
                if script.len() > MAX_SCRIPT_SIZE {
                    self.status(io, too_big(script.len() as u64));
                    return;
                }
                let writer = store.clone();
                store.read(
                    move |r| {
                        if let Err(e) = mailsieve::compile(&script) {
                            return Ok(Err(Status::no(e)));
                        }
                        Ok(room_for(r, uid, &name)?.map(|()| (name, script)))
                    },
                    move |res| match res {
                        Ok(Ok((name, script))) => writer.write(
                            move |tx| tx.put_sieve_script(uid, &name, &script),
                            move |res| reply(&completer, res.map(|()| ok(""))),
                        ),
                        Ok(Err(refusal)) => reply(&completer, Ok(Answer::status(refusal))),
                        Err(e) => reply(&completer, Err(e)),
                    },
                );
            }
            Command::CheckScript { script } => {
                store.read(
                    move |_| {
                        Ok(match mailsieve::compile(&script) {
                            Ok(_) => ok(""),
                            Err(e) => Answer::status(Status::no(e)),
                        })
                    },
                    move |res| reply(&completer, res),
                );
            }
            Command::ListScripts => {
                store.read(
                    move |r| {
                        let data = r
                            .sieve_scripts(uid)?
                            .into_iter()
                            .map(|s| Data::Listed {
                                name: s.name,
                                active: s.active,
                            })
                            .collect();
                        Ok(Answer {
                            data,
                            status: Status::ok(""),
                        })
                    },
                    move |res| reply(&completer, res),
                );
            }
            Command::SetActive { name } => {
                store.write(
                    move |tx| {
                        let name = (!name.is_empty()).then_some(name);
                        tx.activate_sieve_script(uid, name.as_deref())
                    },
                    move |res| reply(&completer, res.map(|()| ok(""))),
                );
            }
            Command::GetScript { name } => {
                store.read(
                    move |r| {
                        Ok(match r.sieve_script(uid, &name)? {
                            Some(script) => Answer {
                                data: vec![Data::Script(script)],
                                status: Status::ok(""),
                            },
                            None => Answer::status(store_error(&StoreError::NotFound(name))),
                        })
                    },
                    move |res| reply(&completer, res),
                );
            }
            Command::DeleteScript { name } => {
                store.write(
                    move |tx| tx.delete_sieve_script(uid, &name),
                    move |res| {
                        let answer = match res {
                            Ok(()) => Ok(ok("")),
                            // The store refuses only the active script.
                            Err(StoreError::Invalid(_)) => Ok(Answer::status(Status::no_code(
                                Code::Active,
                                "The active script cannot be deleted: SETACTIVE \"\" first",
                            ))),
                            Err(e) => Err(e),
                        };
                        reply(&completer, answer)
                    },
                );
            }
            Command::RenameScript { from, to } => {
                store.write(
                    move |tx| tx.rename_sieve_script(uid, &from, &to),
                    move |res| reply(&completer, res.map(|()| ok(""))),
                );
            }
            // The session answers the others itself.
            _ => {
                self.status(io, Status::no("Not a script command"));
                return;
            }
        }
        self.waiting = true;
    }
}
