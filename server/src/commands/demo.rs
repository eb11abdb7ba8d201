//! `demo`: the README's main job.

use std::io::Write;
use std::net::TcpListener;

use super::access::Resolved;
use super::{Result, interrupted, runtime};
use crate::coordinator::Coordinator;
use crate::demo::{self, DemoOptions};
use crate::serve::serve;

/// A server on loopback, simulated observers through a blackout and a
/// seized phone, then everything delivered; serves on until Ctrl-C unless
/// `once`.
pub fn demo(
    at: &Resolved,
    observers: usize,
    records: u64,
    once: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::fs::create_dir_all(&at.data)?;
    let dir = tempfile::Builder::new()
        .prefix("demo-")
        .tempdir_in(&at.data)?
        .keep();
    let server = demo::init_server(&dir, port)?;
    let serving = Coordinator::open(&server.dir, Some(&demo::unlock(&dir)))?;
    let password = demo::coordinator_account(&serving)?;
    let rt = runtime()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(serve(serving, listener, async {
        let _ = stopped.await;
    }));
    writeln!(
        out,
        "Observer demo: coordinating server on {} (data in {})",
        server.url,
        dir.display()
    )?;
    demo::simulate(
        &server,
        &DemoOptions {
            dir: dir.clone(),
            observers: observers.max(1),
            records: records as usize,
        },
        out,
    )?;
    let me = format!(
        "{} --key-file {}",
        demo::this_command(),
        dir.join("demo.key").display()
    );
    writeln!(out, "\nLook:")?;
    if !once {
        writeln!(
            out,
            "  coordinator workspace  {}/login   account {}, password {password}\n                         (self-signed certificate: the phones pin it)",
            server.url,
            demo::COORDINATOR_ACCOUNT,
        )?;
    }
    for (what, command) in [
        ("devices and gaps ", "devices"),
        ("all records      ", "export --format csv"),
        ("check everything ", "verify"),
    ] {
        writeln!(
            out,
            "  {what}  {me} --data {} {command}",
            server.dir.display()
        )?;
    }
    out.flush()?;
    if !once {
        writeln!(out, "Serving until Ctrl-C.")?;
        out.flush()?;
        rt.block_on(interrupted());
    }
    let _ = stop.send(());
    rt.block_on(task)??;
    Ok(())
}
