/**
 * The risk condition tree (docs/risk.md, engine RiskRule.when) as plain JSON, and the edits the builder makes:
 * a node is a leaf `{metric|indicator, op, value}` or a group `{all: [...]}` (AND), `{any: [...]}` (OR),
 * `{not: node}` (NOT). Every function returns a new value; the builder never mutates.
 */

export const METRICS = [
  'price', 'lower', 'upper', 'position_amount', 'position_notional', 'avg_entry_price', 'avg_price_deviation_pct',
  'realized_pnl', 'unrealized_pnl', 'total_pnl', 'equity', 'peak_equity', 'drawdown_pct', 'range_position_pct',
  'level_price',
] as const
export const OPS = ['<', '<=', '>', '>=', '==', '!=', 'crosses_above', 'crosses_below'] as const
/** i18n key of each operator (risk.ops.<key>). */
export const OP_KEYS: Record<string, string> = {
  '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge', '==': 'eq', '!=': 'ne', crosses_above: 'crosses_above', crosses_below: 'crosses_below',
}
export const INDICATORS = ['ma', 'ema', 'rsi', 'atr', 'boll'] as const
export const BANDS = ['upper', 'middle', 'lower'] as const
export const SOURCES = ['open', 'high', 'low', 'close', 'hl2', 'hlc3', 'ohlc4'] as const
export const ACTIONS = ['alert', 'stop_buying', 'pause', 'stop', 'stop_and_sell', 'take_profit'] as const

export interface IndicatorSpec {
  name: (typeof INDICATORS)[number]
  period: number
  k?: string
  band?: (typeof BANDS)[number]
  source?: (typeof SOURCES)[number]
}
export type Operand = string | { metric: string } | { indicator: IndicatorSpec }
export interface Compare {
  metric?: string | null
  indicator?: IndicatorSpec | null
  op: string
  value: Operand
}
export type Condition = Compare | { all: Condition[] } | { any: Condition[] } | { not: Condition }
export type GroupKind = 'all' | 'any'

export interface RiskRule {
  name: string
  scope: 'global' | { layers: number[] | 'all' }
  when: Condition
  action: string
  cooldown_s: number
  once: boolean
}

export function isGroup(node: Condition): node is { all: Condition[] } | { any: Condition[] } {
  return 'all' in node || 'any' in node
}
export function isNot(node: Condition): node is { not: Condition } {
  return 'not' in node
}
export function groupKind(node: Condition): GroupKind | null {
  return 'all' in node ? 'all' : 'any' in node ? 'any' : null
}
export function children(node: Condition): Condition[] {
  if ('all' in node) return node.all
  if ('any' in node) return node.any
  return []
}

export function newCompare(): Compare {
  return { metric: 'drawdown_pct', op: '>', value: '10' }
}
export function newGroup(kind: GroupKind = 'all', items: Condition[] = [newCompare()]): Condition {
  return kind === 'all' ? { all: items } : { any: items }
}
export function newRule(name = 'rule'): RiskRule {
  return { name, scope: 'global', when: newCompare(), action: 'alert', cooldown_s: 0, once: false }
}

/** Change a group between AND and OR, keeping its children. */
export function setKind(node: Condition, kind: GroupKind): Condition {
  return newGroup(kind, children(node))
}
/** Append a child (a new leaf by default) to a group. */
export function addChild(node: Condition, child: Condition = newCompare()): Condition {
  const kind = groupKind(node)
  if (!kind) throw new Error('not a group')
  return newGroup(kind, [...children(node), child])
}
export function replaceChild(node: Condition, index: number, child: Condition): Condition {
  const kind = groupKind(node)
  if (!kind) throw new Error('not a group')
  return newGroup(kind, children(node).map((c, i) => (i === index ? child : c)))
}
/** Remove a child; a group needs at least one child, so the last one cannot be removed (returns the group). */
export function removeChild(node: Condition, index: number): Condition {
  const kind = groupKind(node)
  if (!kind) throw new Error('not a group')
  const rest = children(node).filter((_, i) => i !== index)
  return rest.length ? newGroup(kind, rest) : node
}
/** Negate a node (NOT); negating a NOT unwraps it. */
export function toggleNot(node: Condition): Condition {
  return isNot(node) ? node.not : { not: node }
}
/** Put a leaf (or any node) into a new group with a second condition: `a` → `{all: [a, new]}`. */
export function wrapInGroup(node: Condition, kind: GroupKind = 'all'): Condition {
  return newGroup(kind, [node, newCompare()])
}
/** Collapse a group of one child into the child. */
export function unwrap(node: Condition): Condition {
  const items = children(node)
  return items.length === 1 ? items[0]! : node
}

/** The right-hand operand's kind: a number, a metric or an indicator. */
export function operandKind(value: Operand): 'number' | 'metric' | 'indicator' {
  if (typeof value === 'string') return 'number'
  return 'metric' in value ? 'metric' : 'indicator'
}
export function newOperand(kind: 'number' | 'metric' | 'indicator'): Operand {
  if (kind === 'number') return '0'
  if (kind === 'metric') return { metric: 'lower' }
  return { indicator: { name: 'ema', period: 50 } }
}

/** Count the leaves of a tree (for the summary column). */
export function countLeaves(node: Condition): number {
  if (isNot(node)) return countLeaves(node.not)
  if (isGroup(node)) return children(node).reduce((n, c) => n + countLeaves(c), 0)
  return 1
}

/** A one-line text of a tree: `(drawdown_pct > 10 AND NOT price < lower)`. */
export function describe(node: Condition, words: { and: string; or: string; not: string } = { and: 'AND', or: 'OR', not: 'NOT' }): string {
  if (isNot(node)) return `${words.not} ${describe(node.not, words)}`
  if (isGroup(node)) {
    const joiner = ` ${groupKind(node) === 'all' ? words.and : words.or} `
    return `(${children(node).map((c) => describe(c, words)).join(joiner)})`
  }
  const left = node.metric ?? (node.indicator ? indicatorText(node.indicator) : '?')
  const v = node.value
  const right = typeof v === 'string' ? v : 'metric' in v ? v.metric : indicatorText(v.indicator)
  return `${left} ${node.op} ${right}`
}
function indicatorText(spec: IndicatorSpec): string {
  return `${spec.name}(${spec.period}${spec.name === 'boll' ? `, ${spec.band ?? 'middle'}` : ''})`
}

/**
 * The engine's error paths name union branches (`rules.0.when.<all>.all.0.<leaf>.value.<number>`); drop those
 * tags so the messages match the builder's paths (`rules.0.when.all.0.value`).
 */
export function normalizeErrorKeys(errors: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const [key, messages] of Object.entries(errors)) {
    const clean = key.split('.').filter((part) => !/^<.*>$/.test(part)).join('.')
    out[clean] = [...(out[clean] ?? []), ...messages]
  }
  return out
}

/** A stored rule with the engine's defaults filled in (the server omits defaults: scope, action, cooldown, once). */
export function normalizeRule(rule: Partial<RiskRule> & { when?: Condition }): RiskRule {
  return {
    name: rule.name ?? 'rule',
    scope: rule.scope ?? 'global',
    when: rule.when ?? newCompare(),
    action: rule.action ?? 'alert',
    cooldown_s: rule.cooldown_s ?? 0,
    once: rule.once ?? false,
  }
}
