/**
 * Helpers of the schema form: resolve `$ref`s of a strategy's config JSON Schema (as GET /api/v1/strategies/
 * serves it: decimals are `{type: "string", format: "decimal"}`, nullable ones `type: ["string", "null"]`),
 * decide which input a node needs, build defaults, validate values like the server would (pattern, bounds,
 * required) and find the server's messages for a field (`config.layers.0.qty` → the field at `layers.0.qty`).
 */
import { compare, isDecimal } from '@/utils/decimal'

export type JsonSchema = Record<string, unknown> & {
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  items?: JsonSchema
  required?: string[]
  enum?: unknown[]
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  $ref?: string
  $defs?: Record<string, JsonSchema>
  title?: string
  description?: string
  default?: unknown
  format?: string
}

export type FieldKind = 'object' | 'array' | 'enum' | 'decimal' | 'integer' | 'number' | 'boolean' | 'string' | 'json'

/** A client-side problem; the component translates `code` (bots.form.errors.<code>) with `limit`. */
export interface FieldProblem {
  code: 'required' | 'decimal' | 'integer' | 'min' | 'max' | 'gt' | 'lt' | 'pattern' | 'minItems'
  limit?: string | number
}

/** Follow `$ref` (and the `anyOf: [X, {type: null}]` wrapper); the node's own title/description/default win. */
export function resolve(node: JsonSchema | undefined, root: JsonSchema): JsonSchema & { nullable?: boolean } {
  if (!node) return {}
  let out: JsonSchema & { nullable?: boolean } = { ...node }
  if (Array.isArray(out.anyOf)) {
    const options = out.anyOf
    const nonNull = options.filter((o) => o.type !== 'null')
    if (nonNull.length === 1 && nonNull.length < options.length) {
      const { anyOf: _drop, ...rest } = out
      void _drop
      out = { ...resolve(nonNull[0], root), ...rest, nullable: true }
    }
  }
  if (typeof out.$ref === 'string') {
    const name = out.$ref.replace(/^#\/\$defs\//, '')
    const target = root.$defs?.[name] ?? {}
    const { $ref: _ref, ...own } = out
    void _ref
    out = { ...resolve(target, root), ...own }
  }
  if (Array.isArray(out.type) && out.type.includes('null')) {
    const types = out.type.filter((x) => x !== 'null')
    out = { ...out, type: types.length === 1 ? types[0] : types, nullable: true }
  }
  return out
}

/** Which input renders this (resolved) node. */
export function fieldKind(node: JsonSchema): FieldKind {
  if (Array.isArray(node.enum)) return 'enum'
  if (node.type === 'string' && node.format === 'decimal') return 'decimal'
  if (node.type === 'object' && node.properties) return 'object'
  if (node.type === 'array') return 'array'
  if (node.type === 'integer') return 'integer'
  if (node.type === 'number') return 'number'
  if (node.type === 'boolean') return 'boolean'
  if (node.type === 'string') return 'string'
  return 'json'
}

/** A value for a new object/array item: the schema's defaults, nulls for optional fields. */
export function defaultValue(node: JsonSchema, root: JsonSchema): unknown {
  const r = resolve(node, root)
  if (r.default !== undefined) return jsonClone(r.default)
  const kind = fieldKind(r)
  if (kind === 'object') {
    const out: Record<string, unknown> = {}
    for (const [key, child] of Object.entries(r.properties ?? {})) {
      const c = resolve(child, root)
      if (c.default !== undefined) out[key] = jsonClone(c.default)
      else if ((r.required ?? []).includes(key)) out[key] = fieldKind(c) === 'integer' ? (c.minimum as number | undefined) ?? 0 : defaultValue(c, root)
    }
    return out
  }
  if (kind === 'array') return []
  if (kind === 'boolean') return false
  if (kind === 'enum') return r.enum?.[0]
  if (kind === 'decimal' || kind === 'string') return r.nullable ? null : ''
  return null
}

function bound(node: JsonSchema, key: string): string | undefined {
  const v = node[key]
  return typeof v === 'number' ? String(v) : undefined
}

/** Problems of one value against its (resolved) node; nested values are checked by `validateTree`. */
export function validateValue(node: JsonSchema, value: unknown, required: boolean): FieldProblem[] {
  const empty = value === null || value === undefined || value === ''
  if (empty) return required && !node.nullable && node.default === undefined ? [{ code: 'required' }] : []
  const kind = fieldKind(node)
  const problems: FieldProblem[] = []
  if (kind === 'decimal' || kind === 'integer' || kind === 'number') {
    const text = String(value).trim()
    if (kind === 'decimal' && !isDecimal(text)) return [{ code: 'decimal' }]
    if (kind === 'integer' && !/^-?\d+$/.test(text)) return [{ code: 'integer' }]
    if (kind === 'number' && !Number.isFinite(Number(text))) return [{ code: 'decimal' }]
    const checks: [string, FieldProblem['code'], (c: number) => boolean][] = [
      ['minimum', 'min', (c) => c < 0],
      ['exclusiveMinimum', 'gt', (c) => c <= 0],
      ['maximum', 'max', (c) => c > 0],
      ['exclusiveMaximum', 'lt', (c) => c >= 0],
    ]
    for (const [key, code, bad] of checks) {
      const limit = bound(node, key)
      if (limit !== undefined && bad(compare(text, limit))) problems.push({ code, limit })
    }
  } else if (kind === 'string' && typeof node.pattern === 'string' && !new RegExp(node.pattern).test(String(value))) {
    problems.push({ code: 'pattern' })
  } else if (kind === 'array' && typeof node.minItems === 'number' && Array.isArray(value) && value.length < node.minItems) {
    problems.push({ code: 'minItems', limit: node.minItems })
  }
  return problems
}

/** Problems of a whole value by dotted path (`grid.lower`, `layers.0.qty`), walking objects and arrays. */
export function validateTree(node: JsonSchema, value: unknown, root: JsonSchema, path = '', required = false): Record<string, FieldProblem[]> {
  const r = resolve(node, root)
  const out: Record<string, FieldProblem[]> = {}
  const own = validateValue(r, value, required)
  if (own.length) out[path] = own
  const kind = fieldKind(r)
  if (kind === 'object' && value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(r.properties ?? {})) {
      const sub = validateTree(child, (value as Record<string, unknown>)[key], root, path ? `${path}.${key}` : key,
        (r.required ?? []).includes(key))
      Object.assign(out, sub)
    }
  } else if (kind === 'array' && Array.isArray(value) && r.items) {
    value.forEach((item, i) => Object.assign(out, validateTree(r.items!, item, root, path ? `${path}.${i}` : String(i), true)))
  }
  return out
}

/** The server's messages for the field at `path` (errors keyed `<prefix>.<path>` by the shared API client). */
export function serverErrorsAt(errors: Record<string, string[]>, prefix: string, path: string): string[] {
  if (!path) return [] // the root's messages are listed by the form (unplacedErrors)
  const key = prefix ? (path ? `${prefix}.${path}` : prefix) : path
  return errors[key] ?? []
}

/** Server messages under `prefix` that no rendered field shows (so the form can list them at the top). */
export function unplacedErrors(errors: Record<string, string[]>, prefix: string, shown: ReadonlySet<string>): string[] {
  const out: string[] = []
  // `prefix` itself also collects the nested messages (useFormErrors copies them to the top-level field)
  const nested = Object.keys(errors).some((k) => k.startsWith(`${prefix}.`))
  for (const [key, messages] of Object.entries(errors)) {
    if (key === prefix && nested) continue
    if (!(key === prefix || key.startsWith(`${prefix}.`))) continue
    const path = key === prefix ? '' : key.slice(prefix.length + 1)
    if (path === '' || !shown.has(path)) out.push(...messages.map((m) => (path ? `${path}: ${m}` : m)))
  }
  return out
}

/** The i18n key of a field's label, from the schema's `x-path` (`GridSpec.lower` → `bots.fields.GridSpec.lower`). */
export function labelKey(node: JsonSchema): string | null {
  const xp = node['x-path']
  return typeof xp === 'string' ? `bots.fields.${xp.replace(/\./g, '_')}` : null
}

/** Every dotted path the form renders for `value` (objects, their fields, array items), minus `exclude`d keys. */
export function collectPaths(node: JsonSchema, value: unknown, root: JsonSchema, path = '', exclude: readonly string[] = []): Set<string> {
  const out = new Set<string>()
  const r = resolve(node, root)
  if (path) out.add(path)
  const kind = fieldKind(r)
  if (kind === 'object') {
    for (const [key, child] of Object.entries(r.properties ?? {})) {
      const sub = path ? `${path}.${key}` : key
      if (!path && exclude.includes(key)) continue
      const v = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined
      for (const p of collectPaths(child, v, root, sub)) out.add(p)
    }
  } else if (kind === 'array' && Array.isArray(value) && r.items) {
    value.forEach((item, i) => {
      for (const p of collectPaths(r.items!, item, root, `${path}.${i}`)) out.add(p)
    })
  }
  return out
}

/** A deep copy of JSON data (works on reactive proxies, unlike structuredClone). */
export function jsonClone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T)
}
