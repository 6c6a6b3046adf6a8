//! The Kubernetes API as airlock sees it, without I/O: what a request is
//! ([`request_info`]: path, method and query to verb, API group, version,
//! resource, subresource, namespace, name, dry run), what a refusal looks
//! like to `kubectl` ([`status`]: a `Status` object), and the client-side
//! documents the CLI prints ([`client_config`]: a kubeconfig whose user
//! runs `airlock token kubectl-credential`, and the `ExecCredential` that
//! command answers with), and which values of a response are Secret data
//! ([`secrets`]), and SPDY/3.1 framing and header blocks for the
//! port-forward tunnel ([`spdy`]).
//!
//! Architecture invariant: nothing here decides whether a request runs;
//! the parser only says what it is (and fails closed on anything not in
//! normal form), the core's gate decides.

pub mod client_config;
pub mod query;
pub mod request_info;
pub mod secrets;
pub mod spdy;
pub mod status;

pub use request_info::{parse_request, RequestInfo, RequestInfoError};
