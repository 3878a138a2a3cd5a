//! The workload in Rego, run by regorus' bytecode VM (RVM): rules and blocked ranges as
//! data, one module that denies a blocked source and otherwise looks for an allow rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use regorus::Value;
use regorus::rvm::{Program, RegoVM};

use crate::workload::{PeerRequest, Workload};

/// The policy module (the same for every N).
pub const MODULE: &str = r#"package palisade.bench

import rego.v1

default allow := false

blocked if {
	some cidr in data.blocked
	net.cidr_contains(cidr, input.source_ip)
}

allow if {
	not blocked
	some r in data.rules
	r.principal == input.principal
	r.port == input.port
	r.method == input.method
	startswith(input.path, r.prefix)
}
"#;

/// The module for the L4 workload: principal and port only.
pub const MODULE_L4: &str = r#"package palisade.bench
import rego.v1

default allow := false

blocked if {
	some cidr in data.blocked
	net.cidr_contains(cidr, input.source_ip)
}

allow if {
	not blocked
	some r in data.rules
	r.principal == input.principal
	r.port == input.port
}
"#;

/// The entry point evaluated per request.
pub const ENTRY: &str = "data.palisade.bench.allow";

/// Renders the data document (JSON).
pub fn data(w: &Workload) -> String {
    let rules: Vec<serde_json::Value> = w
        .rules
        .iter()
        .map(|r| serde_json::json!({"principal": r.principal, "port": r.port, "method": r.method, "prefix": r.prefix}))
        .collect();
    let blocked: Vec<String> = w.blocked.iter().map(|n| n.to_string()).collect();
    serde_json::json!({"blocked": blocked, "rules": rules}).to_string()
}

/// A compiled Rego program and its data, ready to be loaded into VMs.
#[derive(Clone)]
pub struct RegoProgram {
    policy: regorus::CompiledPolicy,
    program: Arc<Program>,
    data: Value,
    /// The VM's instruction budget: its default (25,000) stops the scan of a few thousand
    /// rules, which then fails closed; a deployment sizes it to its data as this does.
    max_instructions: usize,
}

/// Errors of the regorus peer.
pub type RegoError = String;

impl RegoProgram {
    /// Compiles the module with the workload's data.
    pub fn new(w: &Workload) -> Result<RegoProgram, RegoError> {
        RegoProgram::from_module(if w.http { MODULE } else { MODULE_L4 }, &data(w))
    }

    /// Compiles the module with a rendered data document.
    pub fn from_data(data_json: &str) -> Result<RegoProgram, RegoError> {
        RegoProgram::from_module(MODULE, data_json)
    }

    /// Compiles a module with a rendered data document.
    pub fn from_module(module: &str, data_json: &str) -> Result<RegoProgram, RegoError> {
        let data = Value::from_json_str(data_json).map_err(|e| e.to_string())?;
        let json: serde_json::Value = serde_json::from_str(data_json).map_err(|e| e.to_string())?;
        let entries: usize = ["rules", "blocked"].iter().filter_map(|k| json[*k].as_array()).map(Vec::len).sum();
        let mut engine = regorus::Engine::new();
        engine.add_policy("bench.rego".to_string(), module.to_string()).map_err(|e| e.to_string())?;
        engine.add_data(data.clone()).map_err(|e| e.to_string())?;
        let policy = engine.compile_with_entrypoint(&ENTRY.into()).map_err(|e| e.to_string())?;
        let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[ENTRY])
            .map_err(|e| e.to_string())?;
        Ok(RegoProgram { policy, program, data, max_instructions: 25_000 + 1_000 * entries })
    }

    /// A VM with this program and data loaded (a VM runs one evaluation at a time).
    pub fn vm(&self) -> Result<RegoPeer, RegoError> {
        let mut vm = RegoVM::new_with_policy(self.policy.clone());
        vm.load_program(self.program.clone());
        vm.set_max_instructions(self.max_instructions);
        vm.set_data(self.data.clone()).map_err(|e| e.to_string())?;
        Ok(RegoPeer { vm })
    }
}

/// One regorus VM with the workload loaded.
pub struct RegoPeer {
    vm: RegoVM,
}

/// Builds regorus' input value: a caller's per-request work.
pub fn input(r: &PeerRequest) -> Value {
    let mut m = BTreeMap::new();
    m.insert(Value::from("principal"), Value::from(r.principal.as_deref().unwrap_or("")));
    m.insert(Value::from("source_ip"), Value::from(r.src_ip.to_string()));
    m.insert(Value::from("port"), Value::from(u64::from(r.port)));
    m.insert(Value::from("method"), Value::from(r.method.as_str()));
    m.insert(Value::from("path"), Value::from(r.path.as_str()));
    Value::from(m)
}

impl RegoPeer {
    /// Evaluates a built input (the pure evaluation); an error is a deny.
    #[inline]
    pub fn evaluate(&mut self, input: Value) -> bool {
        self.vm.set_input(input);
        matches!(self.vm.execute_entry_point_by_name(ENTRY), Ok(Value::Bool(true)))
    }

    /// Builds the input and evaluates (the headline number).
    #[inline]
    pub fn decide(&mut self, r: &PeerRequest) -> bool {
        self.evaluate(input(r))
    }
}
