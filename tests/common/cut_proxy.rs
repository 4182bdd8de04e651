//! Fault-injecting TCP proxies in front of a test cluster's members, for a
//! test that partitions a cluster without root: every member's peers know
//! it by its proxy's address, and a member's connections leave from its
//! own loopback address (`--cluster-listen`'s), so a proxy tells which
//! member is calling. A cut between two members stalls their traffic both
//! ways, on open connections and new ones alike, as dropped packets would;
//! healing lets it flow again.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The pairs of members (lower index first) that cannot reach each other.
type Cuts = BTreeSet<(usize, usize)>;

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

pub struct Fronts {
    /// Member `i`'s address as its peers know it.
    pub addrs: Vec<SocketAddr>,
    cuts: watch::Sender<Cuts>,
}

impl Fronts {
    /// One proxy per member, on the member's own address, forwarding to
    /// `upstreams[i]` (where member `i`'s cluster port listens).
    pub async fn start(upstreams: &[SocketAddr]) -> Fronts {
        let (cuts, watch) = watch::channel(Cuts::new());
        let members: Vec<IpAddr> = upstreams.iter().map(|u| u.ip()).collect();
        let mut addrs = Vec::new();
        for (index, upstream) in upstreams.iter().copied().enumerate() {
            let listener = TcpListener::bind((upstream.ip(), 0)).await.expect("bind proxy");
            addrs.push(listener.local_addr().expect("proxy address"));
            let members = members.clone();
            let watch = watch.clone();
            tokio::spawn(async move {
                while let Ok((caller, from)) = listener.accept().await {
                    // A caller from no member's address is never cut off.
                    let link = members.iter().position(|m| *m == from.ip()).map(|c| pair(c, index));
                    let watch = watch.clone();
                    tokio::spawn(async move {
                        let mut gate = Gate { watch, link };
                        gate.open().await;
                        let Ok(member) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let (caller_read, caller_write) = caller.into_split();
                        let (member_read, member_write) = member.into_split();
                        let back = Gate {
                            watch: gate.watch.clone(),
                            link,
                        };
                        tokio::spawn(pump(caller_read, member_write, gate));
                        tokio::spawn(pump(member_read, caller_write, back));
                    });
                }
            });
        }
        Fronts { addrs, cuts }
    }

    /// Cuts (or heals) the link between members `a` and `b`.
    pub fn set_cut(&self, a: usize, b: usize, cut: bool) {
        self.cuts.send_modify(|cuts| {
            if cut {
                cuts.insert(pair(a, b));
            } else {
                cuts.remove(&pair(a, b));
            }
        });
    }
}

/// Whether one connection's link is open.
struct Gate {
    watch: watch::Receiver<Cuts>,
    link: Option<(usize, usize)>,
}

impl Gate {
    /// Returns once the link is not cut (at once for an outside caller).
    async fn open(&mut self) {
        if let Some(link) = self.link {
            // An error means the proxies are gone: the test is over.
            let _ = self.watch.wait_for(|cuts| !cuts.contains(&link)).await;
        }
    }
}

/// Copies one direction; what arrives while the link is cut waits.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut gate: Gate) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        gate.open().await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        gate.open().await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
