//! A proxy-wasm ABI 0.2.1 test host. It loads the real filter `.wasm` on the `wasmi`
//! interpreter (chosen over wasmtime because it builds in a fraction of the time on two
//! cores and needs no JIT), implements the host calls the Palisade filter uses, and drives
//! the call sequence Envoy does: `_initialize`, root context, `proxy_on_vm_start`,
//! `proxy_on_configure`, then per stream `proxy_on_context_create`,
//! `proxy_on_request_headers` (or `proxy_on_new_connection`), `proxy_on_done`,
//! `proxy_on_log`, `proxy_on_delete`.
//!
//! It models one listener whose filter chain is, as in Envoy, an optional wasm network filter
//! (a second root context of the same VM, [`FilterVm::configure_peer_filter`]) and then the
//! HTTP connection manager with the wasm HTTP filter (the first root context). Connections
//! have ids ([`FilterVm::set_connection`]); the network filter sees a connection once, when it
//! opens, and its context is deleted when the connection closes. Properties are computed per
//! context as Envoy computes them: in a network context `source.address` is the connection's
//! peer; in an HTTP context it is the stream's downstream remote address, which the connection
//! manager derives from `X-Forwarded-For` according to [`Hcm`] (Envoy's
//! `ConnectionManagerUtility::mutateRequestHeaders` and the default XFF original-IP detection).
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

/// The HTTP connection manager's settings that decide the downstream remote address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hcm {
    /// `use_remote_address`.
    pub use_remote_address: bool,
    /// `xff_num_trusted_hops`.
    pub xff_num_trusted_hops: u32,
}

impl Hcm {
    /// Envoy's defaults, and Istio's sidecar inbound listener: `use_remote_address: false`,
    /// no trusted hops, so the remote address is the rightmost `X-Forwarded-For` entry.
    pub const ISTIO_INBOUND: Hcm = Hcm { use_remote_address: false, xff_num_trusted_hops: 0 };
    /// An edge proxy (`proxy-wasm/envoy.yaml`): `use_remote_address: true`, no trusted hops.
    pub const EDGE: Hcm = Hcm { use_remote_address: true, xff_num_trusted_hops: 0 };

    /// The stream's downstream remote address (what `source.address` is in an HTTP context) and
    /// the `X-Forwarded-For` value the filters see, as Envoy computes them.
    pub fn remote_address(&self, peer: Option<&str>, xff: Option<&str>) -> (Option<String>, Option<String>) {
        // Envoy formats an address detected from XFF with port 0.
        let from_xff = |skip: u32| -> Option<String> {
            let mut rest = xff?;
            for _ in 0..skip {
                rest = &rest[..rest.rfind(',')?];
            }
            let last = rest.rsplit(',').next()?.trim();
            match last.parse::<std::net::IpAddr>().ok()? {
                std::net::IpAddr::V4(ip) => Some(format!("{ip}:0")),
                std::net::IpAddr::V6(ip) => Some(format!("[{ip}]:0")),
            }
        };
        if self.use_remote_address {
            let remote = if self.xff_num_trusted_hops > 0 { from_xff(self.xff_num_trusted_hops - 1) } else { None };
            let peer_ip = peer.and_then(|p| p.parse::<std::net::SocketAddr>().ok()).map(|a| a.ip().to_string());
            let appended = match (xff, peer_ip) {
                (Some(x), Some(ip)) => Some(format!("{x},{ip}")),
                (None, Some(ip)) => Some(ip),
                (x, None) => x.map(str::to_string),
            };
            (remote.or_else(|| peer.map(str::to_string)), appended)
        } else {
            (from_xff(self.xff_num_trusted_hops).or_else(|| peer.map(str::to_string)), xff.map(str::to_string))
        }
    }
}

/// One downstream connection.
#[derive(Debug, Clone, Default)]
struct Connection {
    id: u64,
    peer: Option<String>,
    local: Option<String>,
    principal: Option<String>,
    sni: Option<String>,
    /// The network filter's context, once the connection is open.
    network_context: Option<i32>,
    /// Whether the network filter refused the connection.
    refused: bool,
}

/// The host's state for one VM.
#[derive(Default, Debug)]
pub struct HostState {
    /// Properties by `\0`-joined path, as the current context sees them.
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
    hcm: Hcm,
    connection: Connection,
    next_connection: u64,
    /// Whether the network filter (root context `PEER_ROOT`) is in the chain.
    peer_filter: bool,
}

/// The HTTP filter's (or the deciding TCP filter's) root context.
const ROOT: i32 = 1;
/// The `peer` network filter's root context.
const PEER_ROOT: i32 = 2;

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
        let mut vm = FilterVm {
            store,
            instance,
            next_context: 3,
            hcm: Hcm::ISTIO_INBOUND,
            connection: Connection::default(),
            next_connection: 1000,
            peer_filter: false,
        };
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

    /// Sets the plugin configuration of the HTTP (or deciding TCP) filter and calls
    /// `proxy_on_configure`; true when accepted.
    pub fn configure(&mut self, config: &[u8]) -> Result<bool, HostError> {
        self.store.data_mut().plugin_config = config.to_vec();
        let n = config.len() as i32;
        Ok(self.call_ret2("proxy_on_configure", ROOT, n)? != 0)
    }

    /// Puts the same module, with `config`, in the listener's network filter chain (a second
    /// root context of this VM, as Envoy shares one VM between plugins with the same `vm_id`,
    /// VM configuration and code); true when its configuration is accepted.
    pub fn configure_peer_filter(&mut self, config: &[u8]) -> Result<bool, HostError> {
        if !self.peer_filter {
            self.call2("proxy_on_context_create", PEER_ROOT, 0)?;
            self.call_ret2("proxy_on_vm_start", PEER_ROOT, 0)?;
            self.peer_filter = true;
        }
        self.store.data_mut().plugin_config = config.to_vec();
        Ok(self.call_ret2("proxy_on_configure", PEER_ROOT, config.len() as i32)? != 0)
    }

    /// Takes the network filter out of the chain for connections opened from now on.
    pub fn remove_peer_filter(&mut self) {
        self.peer_filter = false;
    }

    /// Sets how the HTTP connection manager derives the downstream remote address.
    pub fn set_hcm(&mut self, hcm: Hcm) {
        self.hcm = hcm;
    }

    /// Closes the current connection (if any) and starts a new one, with a new id, from peer
    /// `source` to local address `destination`, with the peer certificate's URI SAN and the SNI.
    /// The connection opens (the network filter runs) with its first stream.
    pub fn set_connection(
        &mut self,
        source: Option<&str>,
        destination: Option<&str>,
        principal: Option<&str>,
        sni: Option<&str>,
    ) {
        let _ = self.close_connection();
        self.next_connection += 1;
        self.connection = Connection {
            id: self.next_connection,
            peer: source.map(str::to_string),
            local: destination.map(str::to_string),
            principal: principal.map(str::to_string),
            sni: sni.map(str::to_string),
            network_context: None,
            refused: false,
        };
    }

    /// The current connection's id.
    pub fn connection_id(&self) -> u64 {
        self.connection.id
    }

    /// Gives the current, not yet opened, connection another id (Envoy never reuses one; tests
    /// use this to check that a closed connection's record is gone).
    pub fn set_connection_id(&mut self, id: u64) {
        self.connection.id = id;
    }

    /// Sets the properties of a context on the current connection: a network context, or an
    /// HTTP context whose downstream remote address is `remote`.
    fn set_properties(&mut self, http_remote: Option<Option<String>>) {
        let c = self.connection.clone();
        let props = &mut self.store.data_mut().properties;
        props.clear();
        let mut put = |path: &str, v: Option<&[u8]>| {
            if let Some(v) = v {
                props.insert(path.replace('.', "\0").into_bytes(), v.to_vec());
            }
        };
        let source = match &http_remote {
            Some(remote) => remote.as_deref(),
            None => c.peer.as_deref(),
        };
        put("source.address", source.map(str::as_bytes));
        put("destination.address", c.local.as_deref().map(str::as_bytes));
        put("connection.uri_san_peer_certificate", c.principal.as_deref().map(str::as_bytes));
        put("connection.requested_server_name", c.sni.as_deref().map(str::as_bytes));
        put("connection_id", Some(&c.id.to_le_bytes()));
        put("connection.id", Some(&c.id.to_le_bytes()));
    }

    /// Opens the current connection if it is not open yet: the network filter (when in the
    /// chain) sees `proxy_on_new_connection`.
    fn open_connection(&mut self) -> Result<(), HostError> {
        if self.connection.network_context.is_some() || self.connection.refused || !self.peer_filter {
            return Ok(());
        }
        self.set_properties(None);
        let id = self.begin(PEER_ROOT)?;
        let action = self.call_ret1("proxy_on_new_connection", id)?;
        self.connection.network_context = Some(id);
        if action != 0 || self.store.data().closed {
            self.connection.refused = true;
        }
        Ok(())
    }

    /// Closes the current connection: its network filter context is done, logged and deleted.
    pub fn close_connection(&mut self) -> Result<(), HostError> {
        if let Some(id) = self.connection.network_context.take() {
            self.set_properties(None);
            self.end(id, 0)?;
        }
        Ok(())
    }

    fn begin(&mut self, root: i32) -> Result<i32, HostError> {
        let id = self.next_context;
        self.next_context += 1;
        let st = self.store.data_mut();
        st.local_response = None;
        st.closed = false;
        self.call2("proxy_on_context_create", id, root)?;
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

    /// Drives an HTTP stream's request headers through the filter, on the current connection
    /// (opened first if needed). The connection manager rewrites `X-Forwarded-For` and derives
    /// the remote address before the filter runs, as Envoy does.
    pub fn http_request(&mut self, headers: &[(&str, &str)]) -> Result<Outcome, HostError> {
        self.open_connection()?;
        if self.connection.refused {
            return Ok(Outcome { action: 1, response: None, closed: true });
        }
        let xff: Vec<&str> =
            headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for")).map(|(_, v)| *v).collect();
        let xff = (!xff.is_empty()).then(|| xff.join(","));
        let (remote, xff) = self.hcm.remote_address(self.connection.peer.as_deref(), xff.as_deref());
        let mut seen: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("x-forwarded-for"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(x) = xff {
            seen.push(("x-forwarded-for".into(), x));
        }
        let n = seen.len() as i32;
        self.store.data_mut().request_headers = seen;
        self.set_properties(Some(remote));
        let id = self.begin(ROOT)?;
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32), i32>(&self.store, "proxy_on_request_headers")
            .map_err(err)?;
        let action = f.call(&mut self.store, (id, n, 1)).map_err(err)?;
        self.end(id, action)
    }

    /// Drives a new TCP connection through the deciding TCP filter (the first root context), with the
    /// current connection's network properties.
    pub fn tcp_connection(&mut self) -> Result<Outcome, HostError> {
        self.set_properties(None);
        let id = self.begin(ROOT)?;
        let action = self.call_ret1("proxy_on_new_connection", id)?;
        self.end(id, action)
    }

    /// The host state (logs, recorded calls).
    pub fn state(&self) -> &HostState {
        self.store.data()
    }
}
