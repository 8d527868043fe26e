/** Chart series from the analytics API (display only: the exact decimals stay in the tables). */

/**
 * Drawdown below the running peak for each point of an equity curve [[ts, equity], …]: the amount (≤ 0, in the
 * curve's currency) and, when the peak is positive, the percentage of the peak (else null: a bot's equity may
 * start near zero, where a percentage means nothing).
 */
export function drawdownSeries(points: readonly (readonly unknown[])[]): { ts: number; amount: number; pct: number | null }[] {
  let peak = -Infinity
  const out: { ts: number; amount: number; pct: number | null }[] = []
  for (const p of points) {
    const ts = p[0]
    const v = Number(p[1])
    if (typeof ts !== 'number' || p[1] === null || p[1] === undefined || !Number.isFinite(v)) continue
    peak = Math.max(peak, v)
    out.push({ ts, amount: v - peak, pct: peak > 0 ? ((v - peak) / peak) * 100 : null })
  }
  return out
}
