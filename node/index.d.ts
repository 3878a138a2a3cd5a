/* Request and Decision are plain objects in the SPEC 7 JSON shape. */
export interface Request {
  direction?: 'ingress' | 'egress' | 'both'
  protocol?: string | number
  source: { ip: string; port?: number | null; principal?: string | null; remote_ip?: string | null; remoteIp?: string | null }
  destination: { ip: string; port?: number | null; principal?: string | null }
  icmp?: { type: number; code?: number | null } | null
  http?: { method: string; path: string; host?: string | null; headers?: Record<string, string> } | null
  sni?: string | null
  auth?: { principal?: string | null; audiences?: string[]; presenter?: string | null; claims?: Record<string, unknown> } | null
}
export interface Decision {
  action: 'allow' | 'deny'
  reason: 'rule' | 'end_of_tier' | 'no_policy' | 'identity_mismatch' | 'missing_peer_identity' | 'invalid_request' | 'no_bundle'
  side: 'ingress' | 'egress' | null
  tier: string | null
  policy: string | null
  rule: number | null
  peer: 'source' | 'destination' | null
  l7_pending: boolean
  staged: { action: 'allow' | 'deny' } | null
  generation: number
  /** For invalid_request: what was wrong. */
  detail: string | null
  trace: { ingress?: string[]; egress?: string[] }
}

/**
 * Which binding artifact the generated loader actually loaded: `'native'` for
 * a native addon, otherwise the `platformArchABI` of the WASI flavor. Every
 * flavor napi-rs can build is listed, because `NAPI_RS_NATIVE_LIBRARY_PATH`
 * can point the loader at a WASI artifact this package does not build itself.
 */
export declare const __napiBindingTarget: 'native' | 'wasm32-wasi' | 'wasm32-wasip1'

/** The policy decision point. */
export declare class Engine {
  /**
   * An engine with nothing loaded (it denies everything, reason `no_bundle`). `config`
   * takes the CLI's configuration keys.
   */
  constructor(configObject?: any | undefined | null)
  /** An engine loaded from files and directories. */
  static fromPaths(paths: Array<string>, configObject?: any | undefined | null): Engine
  /** Loads files and directories; returns the new generation. Throws `BUNDLE_ERROR`. */
  loadPaths(paths: Array<string>): number
  /** Loads files and directories off the JavaScript thread. */
  loadPathsAsync(paths: Array<string>): Promise<number>
  /** Loads a bundle given as YAML or JSON text; returns the new generation. */
  loadYaml(text: string): number
  /**
   * Applies a change set: an array of `{op: 'upsert', object}`, `{op: 'upsert', text,
   * source?}` and `{op: 'delete', apiVersion, kind, namespace?, name}`. All-or-nothing
   * (throws `BUNDLE_ERROR`, nothing changes), or with `lenient` the upserts that fail are
   * left out and listed in the report's `rejected`. Returns `{generation, upserted,
   * deleted, objects, rejected}`.
   */
  apply(changes: Array<Record<string, unknown>>, lenient?: boolean): { generation: number; upserted: number; deleted: number; objects: number; rejected: Array<Record<string, unknown>> }
  /**
   * Decides a request (a plain object in the SPEC 7 shape). A malformed request is a deny
   * with reason `invalid_request`, or throws `REQUEST_ERROR` when `strict` is true.
   */
  decide(request: Request, strict?: boolean): Decision
  /** Decides many requests against one snapshot (traces are not recorded). */
  decideMany(requests: Request[]): Decision[]
  /**
   * `decide` on JSON text (what `palisade.js` calls: V8's JSON is faster than converting
   * objects property by property).
   */
  decideJson(request: string, strict?: boolean | undefined | null): string
  /** `decideMany` on a JSON array (what `palisade.js` calls). */
  decideManyJson(requests: string): string
  /** The tier walk for a person to read. */
  explain(request: Request): string
  /** The generation of the snapshot in force (0 when nothing is loaded). */
  get generation(): number
  /**
   * The documents of the bundle in force that Palisade read no access rule from:
   * `[{apiVersion, kind, count}]` (empty when nothing is loaded).
   */
  skipped(): any
}

/**
 * A flow logger over an engine: `decide` decides as `Engine.decide` does and records the
 * decision into a bounded queue (allocation-free, never waits); `drain` returns the records
 * in Calico's flow-log format. A full queue drops records and counts them (`dropped`).
 */
export declare class FlowLog {
  /**
   * A flow logger deciding with `engine`. `capacity` decisions (default 4096) are held
   * until `drain` (allocated now). `aggregation`: null for one record per evaluated side of
   * each decision, a Calico level 0-3 for allowed and denied flows alike, or `'default'`
   * for Felix's defaults (2 allowed, 1 denied).
   */
  constructor(engine: Engine, capacity?: number | null, aggregation?: number | 'default' | null)
  /**
   * Decides like `Engine.decide` (same arguments, same decision; `trace` is empty) and
   * records the decision. A request that does not parse is not recorded.
   */
  decide(request: Request, strict?: boolean): Decision
  /** `decide` on JSON text (what `palisade.js` calls). */
  decideJson(request: string, strict?: boolean | undefined | null): string
  /**
   * Takes every recorded decision and returns its flow-log records (aggregated as
   * configured), objects with Calico's field names.
   */
  drain(): Record<string, any>[]
  /** `drain` as a JSON array (what `palisade.js` calls). */
  drainJson(): string
  /** Decisions not recorded because the queue was full (never reset). */
  get dropped(): number
}

/** The library version. */
export declare function version(): string
