/** A readable config diff: the server's change rows ({path, kind, old, new}) as display rows. */
export interface ChangeRow {
  path: string
  kind: string
  old: unknown
  new: unknown
}

/** Show a config value compactly: strings as they are, everything else as JSON. */
export function showValue(value: unknown): string {
  if (value === undefined) return '—'
  if (typeof value === 'string') return value
  return JSON.stringify(value)
}

/**
 * Compare two configs when the server sent no change rows: dotted paths of leaves that differ (lists compare
 * whole, like the server does).
 */
export function diffConfigs(before: unknown, after: unknown, prefix = ''): ChangeRow[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
    return keys.flatMap((k) => {
      const path = prefix ? `${prefix}.${k}` : k
      if (!(k in before)) return [{ path, kind: 'added', old: undefined, new: after[k] }]
      if (!(k in after)) return [{ path, kind: 'removed', old: before[k], new: undefined }]
      return diffConfigs(before[k], after[k], path)
    })
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path: prefix, kind: 'changed', old: before, new: after }]
}

/** The explanation fields a risk event carries (whatever is present), in a stable order. */
export function explain(data: unknown): [string, string][] {
  if (typeof data !== 'object' || data === null) return []
  const out: [string, string][] = []
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (v === null || v === undefined || v === '') continue
    out.push([k, typeof v === 'string' ? v : JSON.stringify(v)])
  }
  return out
}
