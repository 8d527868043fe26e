/** Read (not verify) a JWT's claims: the client only needs `exp` to refresh ahead of time. */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const part = token.split('.')[1]
  if (!part) return null
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=')
    const parsed: unknown = JSON.parse(atob(base64))
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** Expiry in epoch milliseconds, or null when the token has none / cannot be read. */
export function jwtExpiresAt(token: string): number | null {
  const exp = jwtClaims(token)?.exp
  return typeof exp === 'number' ? exp * 1000 : null
}

/** True when the token expires within `marginMs` (or cannot be read). */
export function jwtExpiringSoon(token: string, marginMs = 30_000, now = Date.now()): boolean {
  const at = jwtExpiresAt(token)
  return at === null || at - now <= marginMs
}
