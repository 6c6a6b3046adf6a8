//! Fuzzes the MySQL gateway's session bookkeeping (no sockets): client
//! commands decoded with the session's capabilities, `KILL` mapping, the
//! character-set check, SQL-level `PREPARE`/`EXECUTE` tracking, the
//! binary-protocol statement table and the response tracker, driven by
//! `airlock_mysql_gateway::fuzzing::drive`, which panics only when an
//! invariant the relay relies on breaks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    airlock_mysql_gateway::fuzzing::drive(data);
});
