//! Owns the NATS client wire protocol: parsing what clients send and encoding what the server sends back.
//!
//! [`Parser`] turns a connection's input buffer into borrowed [`Op`]s (one file per operation
//! parses that operation's arguments); the encoders ([`info::encode_info`],
//! [`msg::encode_msg_line`], [`errors::encode_err`] and the fixed replies in [`errors`])
//! append server frames to an output buffer; [`server_ops`] parses server frames for client-mode tools, and [`leaf_ops`] a hub's frames for the leaf link. Subject syntax is checked elsewhere.

pub mod connect;
pub mod errors;
pub mod info;
pub mod leaf_ops;
mod lex;
pub mod msg;
pub mod parser;
pub mod publish;
pub mod server_ops;
pub mod subscribe;
pub mod unsubscribe;

pub use connect::ConnectOptions;
pub use errors::ProtoError;
pub use info::ServerInfo;
pub use parser::{Op, Parsed, Parser};
pub use publish::Publish;
pub use server_ops::{parse_server_op, Delivery, ServerOp, ServerParsed};
pub use subscribe::Subscribe;
pub use unsubscribe::Unsubscribe;
