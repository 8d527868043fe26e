import { describe, expect, it } from 'vitest'
import { ApiError, normalizeError, toApiError } from '@/api/errors'
import { useFormErrors } from '@/composables/useFormErrors'

describe('normalizeError (DRF bodies → { fieldErrors, message })', () => {
  it('puts field messages on their fields and keeps the first as message', () => {
    const e = normalizeError(400, { username: ['A user with that username already exists.'], email: ['Enter a valid email address.'] })
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(400)
    expect(e.fieldErrors).toEqual({
      username: ['A user with that username already exists.'],
      email: ['Enter a valid email address.'],
    })
    expect(e.message).toBe('username: A user with that username already exists.')
    expect(e.isValidation).toBe(true)
  })

  it('uses detail and non_field_errors as the general message', () => {
    expect(normalizeError(403, { detail: 'You do not have permission to perform this action.' }).message).toBe(
      'You do not have permission to perform this action.',
    )
    const e = normalizeError(400, { non_field_errors: ['Passwords differ.'], password: ['Too short.'] })
    expect(e.message).toBe('Passwords differ.')
    expect(e.fieldErrors).toEqual({ password: ['Too short.'] })
  })

  it('flattens nested serializers and lists to dotted keys', () => {
    const e = normalizeError(400, {
      config: { lower: ['must be below upper'], layers: [{}, { ratio: ['must be > 0'] }] },
      tags: ['not a list'],
    })
    expect(e.fieldErrors).toEqual({
      'config.lower': ['must be below upper'],
      'config.layers.1.ratio': ['must be > 0'],
      tags: ['not a list'],
    })
  })

  it('reads a top-level list of messages and a plain string', () => {
    expect(normalizeError(400, ['Bot is running.']).message).toBe('Bot is running.')
    expect(normalizeError(409, 'conflict!').message).toBe('conflict!')
  })

  it('never shows HTML and falls back to the status', () => {
    const e = normalizeError(502, '<html><body>Bad gateway</body></html>')
    expect(e.message).not.toContain('<')
    expect(e.message).toMatch(/unavailable|gateway/i)
    expect(normalizeError(500, undefined).message).toMatch(/server error/i)
    expect(normalizeError(418, null).message).toContain('418')
  })

  it("drops simplejwt's code/messages noise but keeps a real `code` field", () => {
    const jwt = normalizeError(401, {
      detail: 'Given token not valid for any token type',
      code: 'token_not_valid',
      messages: [{ token_class: 'AccessToken', message: 'Token is expired' }],
    })
    expect(jwt.message).toBe('Given token not valid for any token type')
    expect(jwt.fieldErrors).toEqual({})
    const voucher = normalizeError(400, { code: ['Unknown or used code.'] })
    expect(voucher.fieldErrors).toEqual({ code: ['Unknown or used code.'] })
  })

  it('keeps decimal strings as strings in the body', () => {
    const body = { amount: ['Ensure that there are no more than 8 decimal places.'], balance: '12.30000000' }
    expect(normalizeError(400, body).body).toBe(body)
  })

  it('turns thrown values into ApiError (network = status 0)', () => {
    expect(toApiError(new TypeError('Failed to fetch')).status).toBe(0)
    expect(toApiError(new TypeError('Failed to fetch')).isNetwork).toBe(true)
    const original = new ApiError(404, 'x')
    expect(toApiError(original)).toBe(original)
    expect(toApiError('boom').message).toBe('boom')
  })
})

describe('useFormErrors', () => {
  it('shows field errors on known fields and the rest as the form message', () => {
    const errors = useFormErrors(['username', 'password'])
    errors.apply(normalizeError(400, { username: ['taken'], referral_code: ['Unknown referral code.'] }))
    expect(errors.bind('username')).toEqual({ validateStatus: 'error', help: 'taken' })
    expect(errors.bind('password')).toEqual({})
    expect(errors.formError.value).toBe('referral_code: Unknown referral code.')
    errors.clear('username')
    expect(errors.bind('username')).toEqual({})
  })

  it('shows a non-validation error as the form message only', () => {
    const errors = useFormErrors(['username'])
    errors.apply(normalizeError(401, { detail: 'No active account found with the given credentials' }))
    expect(errors.formError.value).toBe('No active account found with the given credentials')
    expect(errors.fields).toEqual({})
  })

  it('marks the top-level field of a nested error', () => {
    const errors = useFormErrors(['config'])
    errors.apply(normalizeError(400, { config: { lower: ['too low'] } }))
    expect(errors.bind('config.lower').help).toBe('too low')
    expect(errors.bind('config').help).toBe('too low')
    expect(errors.formError.value).toBeNull()
  })
})
