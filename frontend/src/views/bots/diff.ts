/** Config diffs for the "edit a running bot" confirmation: the server's dry-run diff as rows, and a local diff. */

export interface DiffRow {
  path: string
  kind: 'changed' | 'added' | 'removed'
  old: unknown
  new: unknown
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The server's `{"grid.lower": {old, new, added?, removed?}}` diff as sorted rows. */
export function serverDiffRows(diff: unknown): DiffRow[] {
  if (!isObject(diff)) return []
  return Object.keys(diff)
    .sort()
    .flatMap((path) => {
      const change = diff[path]
      if (!isObject(change)) return []
      const kind = change.added ? 'added' : change.removed ? 'removed' : 'changed'
      return [{ path, kind, old: change.old ?? null, new: change.new ?? null } as DiffRow]
    })
}

/** Dotted paths whose values differ between two configs (lists compare whole, as the server does). */
export function diffConfigs(before: unknown, after: unknown, prefix = ''): DiffRow[] {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
    return keys.flatMap((k) => {
      const path = prefix ? `${prefix}.${k}` : k
      if (!(k in before)) return [{ path, kind: 'added' as const, old: null, new: after[k] }]
      if (!(k in after)) return [{ path, kind: 'removed' as const, old: before[k], new: null }]
      return diffConfigs(before[k], after[k], path)
    })
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path: prefix, kind: 'changed', old: before, new: after }]
}

/** A value as short text: strings as they are, null as "—", the rest as JSON. */
export function showValue(value: unknown): string {
  if (value === null || value === undefined) return '—'
  if (typeof value === 'string') return value
  return JSON.stringify(value)
}
