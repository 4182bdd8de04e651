//! A cluster of real `warren` processes on 127.0.0.1, .2, .3...: every
//! member's cluster port is chosen before any starts (the peer list names
//! them all); each node's AMQP and management ports are its own to pick.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;

use super::Warren;

/// A free port on a loopback address (the cluster list needs every port
/// before any node starts).
fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
    pub cluster: SocketAddr,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub peers: String,
}

impl Cluster {
    pub fn new(count: u8) -> Cluster {
        let nodes: Vec<Node> = (1..=count)
            .map(|i| {
                let ip = Ipv4Addr::new(127, 0, 0, i);
                Node {
                    name: format!("n{i}"),
                    ip,
                    cluster: SocketAddr::from((ip, free_port(ip))),
                }
            })
            .collect();
        let peers = nodes
            .iter()
            .map(|n| format!("{}={}", n.name, n.cluster))
            .collect::<Vec<_>>()
            .join(",");
        Cluster { nodes, peers }
    }

    /// Starts member `index` on its data directory under `data`.
    pub fn start(&self, index: usize, data: &Path) -> Warren {
        let node = &self.nodes[index];
        let listen = format!("{}:0", node.ip);
        let cluster = node.cluster.to_string();
        Warren::start_with(
            &data.join(&node.name),
            &[
                "--listen",
                &listen,
                "--management-listen",
                &listen,
                "--node-name",
                &node.name,
                "--cluster-listen",
                &cluster,
                "--cluster-peers",
                &self.peers,
            ],
        )
    }
}
