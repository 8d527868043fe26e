/** Where a logged-in user lands. */
export const HOME = '/dashboard'

/** A `?redirect=` value that is a path inside this app, else HOME. */
export function safeRedirect(value: unknown): string {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.includes('\\') ? value : HOME
}
