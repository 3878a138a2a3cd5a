//! A proxy-wasm ABI 0.2.1 test host. It loads the real filter `.wasm` on the `wasmi`
//! interpreter (chosen over wasmtime because it builds in a fraction of the time on two
//! cores and needs no JIT), implements the host calls the Palisade filter uses, and drives
//! the call sequence Envoy does: `_initialize`, root context, `proxy_on_vm_start`,
//! `proxy_on_configure`, then per stream `proxy_on_context_create`,
//! `proxy_on_request_headers` (or `proxy_on_new_connection`), `proxy_on_done`,
//! `proxy_on_log`, `proxy_on_delete`.
//!
//! Memory protocol: data returned to the guest is allocated with the guest's `malloc`
//! export (the SDK adopts it with `Vec::from_raw_parts`) and its address and length are
//! written as little-endian u32s. Header maps use the ABI's pair serialization. Any import
//! the host does not implement answers `UNIMPLEMENTED`.

use std::collections::HashMap;

use wasmi::{Caller, Engine, Extern, Func, Instance, Linker, Memory, Module, Store, Val};

/// proxy-wasm status codes.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// Not found.
    pub const NOT_FOUND: i32 = 1;
    /// Bad argument.
    pub const BAD_ARGUMENT: i32 = 2;
    /// Memory out of bounds.
    pub const INVALID_MEMORY_ACCESS: i32 = 6;
    /// Failure inside the host.
    pub const INTERNAL_FAILURE: i32 = 10;
    /// Not implemented by this host.
    pub const UNIMPLEMENTED: i32 = 12;
}

/// A local reply the filter sent (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// HTTP status.
    pub status: u32,
    /// Body.
    pub body: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, String)>,
}

/// The host's state for one VM.
#[derive(Default, Debug)]
pub struct HostState {
    /// Properties by `\0`-joined path.
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    /// Request headers of the current stream.
    pub request_headers: Vec<(String, String)>,
    /// The plugin configuration.
    pub plugin_config: Vec<u8>,
    /// The last local reply.
    pub local_response: Option<LocalResponse>,
    /// Whether the filter closed the downstream connection.
    pub closed: bool,
    /// Log lines `(level, message)`.
    pub logs: Vec<(i32, String)>,
    /// Host calls answered `UNIMPLEMENTED`.
    pub unimplemented: Vec<String>,
}

/// What a stream hook returned and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The hook's return: 0 continue, 1 pause.
    pub action: i32,
    /// The local reply, if any.
    pub response: Option<LocalResponse>,
    /// Whether the connection was closed.
    pub closed: bool,
}

impl Outcome {
    /// Whether the request went on.
    pub fn allowed(&self) -> bool {
        self.action == 0 && self.response.is_none() && !self.closed
    }
}

/// Errors of the harness itself.
#[derive(Debug)]
pub struct HostError(pub String);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

fn err(e: impl std::fmt::Display) -> HostError {
    HostError(e.to_string())
}

fn memory(caller: &Caller<'_, HostState>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

fn read(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let m = memory(caller)?;
    let data = m.data(caller);
    data.get(ptr as u32 as usize..(ptr as u32 as usize).checked_add(len as u32 as usize)?).map(<[u8]>::to_vec)
}

fn write_u32(caller: &mut Caller<'_, HostState>, at: i32, v: u32) -> bool {
    let Some(m) = memory(caller) else { return false };
    m.write(caller, at as u32 as usize, &v.to_le_bytes()).is_ok()
}

/// Copies `bytes` into guest memory allocated with the guest's `malloc` and stores the
/// address and length at `ret_ptr` / `ret_len`.
fn give(caller: &mut Caller<'_, HostState>, bytes: &[u8], ret_ptr: i32, ret_len: i32) -> i32 {
    let malloc = match caller.get_export("malloc").or_else(|| caller.get_export("proxy_on_memory_allocate")) {
        Some(Extern::Func(f)) => f,
        _ => return status::INTERNAL_FAILURE,
    };
    let Ok(malloc) = malloc.typed::<i32, i32>(&caller) else { return status::INTERNAL_FAILURE };
    let Ok(addr) = malloc.call(&mut *caller, bytes.len() as i32) else { return status::INTERNAL_FAILURE };
    let Some(m) = memory(caller) else { return status::INTERNAL_FAILURE };
    if m.write(&mut *caller, addr as u32 as usize, bytes).is_err() {
        return status::INVALID_MEMORY_ACCESS;
    }
    if !write_u32(caller, ret_ptr, addr as u32) || !write_u32(caller, ret_len, bytes.len() as u32) {
        return status::INVALID_MEMORY_ACCESS;
    }
    status::OK
}

/// The ABI's header-map serialization.
pub fn serialize_map(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend((k.len() as u32).to_le_bytes());
        out.extend((v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend(k.as_bytes());
        out.push(0);
        out.extend(v.as_bytes());
        out.push(0);
    }
    out
}

fn deserialize_map(bytes: &[u8]) -> Vec<(String, String)> {
    let u32_at = |i: usize| bytes.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let Some(n) = u32_at(0) else { return Vec::new() };
    let mut sizes = Vec::new();
    for i in 0..n {
        match (u32_at(4 + i * 8), u32_at(8 + i * 8)) {
            (Some(k), Some(v)) => sizes.push((k, v)),
            _ => return Vec::new(),
        }
    }
    let mut at = 4 + n * 8;
    let mut out = Vec::new();
    for (k, v) in sizes {
        let key = bytes.get(at..at + k).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        at += k + 1;
        let val = bytes.get(at..at + v).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        at += v + 1;
        out.push((key, val));
    }
    out
}

fn linker(engine: &Engine) -> Result<Linker<HostState>, HostError> {
    let mut l = Linker::<HostState>::new(engine);
    l.func_wrap("env", "proxy_log", |c: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| -> i32 {
        let msg = read(&c, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut c = c;
        match msg {
            Some(m) => {
                c.data_mut().logs.push((level, m));
                status::OK
            }
            None => status::INVALID_MEMORY_ACCESS,
        }
    })
    .map_err(err)?;
    l.func_wrap("env", "proxy_get_log_level", |mut c: Caller<'_, HostState>, ret: i32| -> i32 {
        if write_u32(&mut c, ret, 0) { status::OK } else { status::INVALID_MEMORY_ACCESS }
    })
    .map_err(err)?;
    l.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let Some(path) = read(&c, ptr, len) else { return status::INVALID_MEMORY_ACCESS };
            match c.data().properties.get(&path).cloned() {
                Some(v) => give(&mut c, &v, ret_ptr, ret_len),
                None => status::NOT_FOUND,
            }
        },
    )
    .map_err(err)?;
    l.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, HostState>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            if kind != 7 {
                return status::NOT_FOUND;
            }
            let data = c.data().plugin_config.clone();

            // The SDK passes max = usize::MAX: treat it as u32 and clamp.
            let start = (start as u32 as usize).min(data.len());
            let end = start.saturating_add(max as u32 as usize).min(data.len());
            let slice = data.get(start..end).unwrap_or_default().to_vec();
            give(&mut c, &slice, ret_ptr, ret_len)
        },
    )
    .map_err(err)?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, HostState>, kind: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            if kind != 0 {
                return give(&mut c, &serialize_map(&[]), ret_ptr, ret_len);
            }
            let bytes = serialize_map(&c.data().request_headers);
            give(&mut c, &bytes, ret_ptr, ret_len)
        },
    )
    .map_err(err)?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, HostState>, kind: i32, kptr: i32, klen: i32, ret_ptr: i32, ret_len: i32| -> i32 {
            let Some(key) = read(&c, kptr, klen) else { return status::INVALID_MEMORY_ACCESS };
            let key = String::from_utf8_lossy(&key).to_ascii_lowercase();
            let value = if kind == 0 {
                c.data().request_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key)).map(|(_, v)| v.clone())
            } else {
                None
            };
            match value {
                Some(v) => give(&mut c, v.as_bytes(), ret_ptr, ret_len),
                None => status::NOT_FOUND,
            }
        },
    )
    .map_err(err)?;
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, HostState>,
         code: i32,
         _dptr: i32,
         _dlen: i32,
         bptr: i32,
         blen: i32,
         hptr: i32,
         hlen: i32,
         _grpc: i32|
         -> i32 {
            let (Some(body), Some(headers)) = (read(&c, bptr, blen), read(&c, hptr, hlen)) else {
                return status::INVALID_MEMORY_ACCESS;
            };
            c.data_mut().local_response =
                Some(LocalResponse { status: code as u32, body, headers: deserialize_map(&headers) });
            status::OK
        },
    )
    .map_err(err)?;
    l.func_wrap("env", "proxy_close_stream", |mut c: Caller<'_, HostState>, _kind: i32| -> i32 {
        c.data_mut().closed = true;
        status::OK
    })
    .map_err(err)?;
    l.func_wrap("env", "proxy_set_effective_context", |_: Caller<'_, HostState>, _ctx: i32| -> i32 { status::OK })
        .map_err(err)?;
    l.func_wrap("env", "proxy_done", |_: Caller<'_, HostState>| -> i32 { status::OK }).map_err(err)?;
    l.func_wrap("env", "proxy_set_tick_period_milliseconds", |_: Caller<'_, HostState>, _ms: i32| -> i32 {
        status::OK
    })
    .map_err(err)?;
    l.func_wrap("env", "proxy_get_current_time_nanoseconds", |mut c: Caller<'_, HostState>, ret: i32| -> i32 {
        let Some(m) = memory(&c) else { return status::INTERNAL_FAILURE };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        if m.write(&mut c, ret as u32 as usize, &now.to_le_bytes()).is_ok() {
            status::OK
        } else {
            status::INVALID_MEMORY_ACCESS
        }
    })
    .map_err(err)?;
    Ok(l)
}

/// The host calls this harness implements (everything else answers `UNIMPLEMENTED`).
const IMPLEMENTED: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_property",
    "proxy_get_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_send_local_response",
    "proxy_close_stream",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_current_time_nanoseconds",
];

/// A loaded filter VM.
pub struct FilterVm {
    store: Store<HostState>,
    instance: Instance,
    next_context: i32,
}

const ROOT: i32 = 1;

impl FilterVm {
    /// Loads the `.wasm` and starts the VM: `_initialize`, the root context, `proxy_on_vm_start`.
    pub fn load(wasm: &[u8]) -> Result<FilterVm, HostError> {
        let mut config = wasmi::Config::default();
        // Compile function bodies lazily: the filter is large and most of it is never run.
        config.compilation_mode(wasmi::CompilationMode::Lazy);
        let engine = Engine::new(&config);
        let module = Module::new(&engine, wasm).map_err(err)?;
        let mut store = Store::new(&engine, HostState::default());
        let mut linker = linker(&engine)?;
        // Imports this host does not implement answer UNIMPLEMENTED (and are recorded).
        for import in module.imports() {
            if import.module() == "env" && IMPLEMENTED.contains(&import.name()) {
                continue;
            }
            if let wasmi::ExternType::Func(ty) = import.ty() {
                let name = format!("{}.{}", import.module(), import.name());
                let func = Func::new(
                    &mut store,
                    ty.clone(),
                    move |mut c: Caller<'_, HostState>, _args: &[Val], results: &mut [Val]| {
                        c.data_mut().unimplemented.push(name.clone());
                        if let Some(r) = results.first_mut() {
                            *r = Val::I32(status::UNIMPLEMENTED);
                        }
                        Ok(())
                    },
                );
                linker.define(import.module(), import.name(), func).map_err(err)?;
            }
        }
        let instance = linker.instantiate_and_start(&mut store, &module).map_err(err)?;
        let mut vm = FilterVm { store, instance, next_context: 2 };
        if let Ok(init) = vm.instance.get_typed_func::<(), ()>(&vm.store, "_initialize") {
            init.call(&mut vm.store, ()).map_err(err)?;
        }
        vm.call2("proxy_on_context_create", ROOT, 0)?;
        vm.call_ret2("proxy_on_vm_start", ROOT, 0)?;
        Ok(vm)
    }

    fn call2(&mut self, name: &str, a: i32, b: i32) -> Result<(), HostError> {
        let f = self.instance.get_typed_func::<(i32, i32), ()>(&self.store, name).map_err(err)?;
        f.call(&mut self.store, (a, b)).map_err(err)
    }

    fn call_ret2(&mut self, name: &str, a: i32, b: i32) -> Result<i32, HostError> {
        let f = self.instance.get_typed_func::<(i32, i32), i32>(&self.store, name).map_err(err)?;
        f.call(&mut self.store, (a, b)).map_err(err)
    }

    fn call_ret1(&mut self, name: &str, a: i32) -> Result<i32, HostError> {
        let f = self.instance.get_typed_func::<i32, i32>(&self.store, name).map_err(err)?;
        f.call(&mut self.store, a).map_err(err)
    }

    /// Sets the plugin configuration and calls `proxy_on_configure`; true when accepted.
    pub fn configure(&mut self, config: &[u8]) -> Result<bool, HostError> {
        self.store.data_mut().plugin_config = config.to_vec();
        let n = config.len() as i32;
        Ok(self.call_ret2("proxy_on_configure", ROOT, n)? != 0)
    }

    /// Sets the connection properties Envoy would expose.
    pub fn set_connection(
        &mut self,
        source: Option<&str>,
        destination: Option<&str>,
        principal: Option<&str>,
        sni: Option<&str>,
    ) {
        let props = &mut self.store.data_mut().properties;
        props.clear();
        let mut put = |path: &str, v: Option<&str>| {
            if let Some(v) = v {
                props.insert(path.replace('.', "\0").into_bytes(), v.as_bytes().to_vec());
            }
        };
        put("source.address", source);
        put("destination.address", destination);
        put("connection.uri_san_peer_certificate", principal);
        put("connection.requested_server_name", sni);
    }

    fn begin(&mut self) -> Result<i32, HostError> {
        let id = self.next_context;
        self.next_context += 1;
        let st = self.store.data_mut();
        st.local_response = None;
        st.closed = false;
        self.call2("proxy_on_context_create", id, ROOT)?;
        Ok(id)
    }

    fn end(&mut self, id: i32, action: i32) -> Result<Outcome, HostError> {
        self.call_ret1("proxy_on_done", id)?;
        let f = self.instance.get_typed_func::<i32, ()>(&self.store, "proxy_on_log").map_err(err)?;
        f.call(&mut self.store, id).map_err(err)?;
        let f = self.instance.get_typed_func::<i32, ()>(&self.store, "proxy_on_delete").map_err(err)?;
        f.call(&mut self.store, id).map_err(err)?;
        let st = self.store.data();
        Ok(Outcome { action, response: st.local_response.clone(), closed: st.closed })
    }

    /// Drives an HTTP stream's request headers through the filter.
    pub fn http_request(&mut self, headers: &[(&str, &str)]) -> Result<Outcome, HostError> {
        self.store.data_mut().request_headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let id = self.begin()?;
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32), i32>(&self.store, "proxy_on_request_headers")
            .map_err(err)?;
        let action = f.call(&mut self.store, (id, headers.len() as i32, 1)).map_err(err)?;
        self.end(id, action)
    }

    /// Drives a new TCP connection through the filter.
    pub fn tcp_connection(&mut self) -> Result<Outcome, HostError> {
        let id = self.begin()?;
        let action = self.call_ret1("proxy_on_new_connection", id)?;
        self.end(id, action)
    }

    /// The host state (logs, recorded calls).
    pub fn state(&self) -> &HostState {
        self.store.data()
    }
}
