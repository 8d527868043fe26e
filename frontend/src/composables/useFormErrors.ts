import { reactive, ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'

/**
 * Server messages on form fields. In a template:
 *
 *   <a-form-item :label="t('auth.username')" name="username" v-bind="errors.bind('username')">
 *   <ErrorAlert :message="errors.formError.value" />
 *
 * and in the submit handler: `errors.reset(); try { … } catch (e) { errors.apply(e) }`. Editing a field clears
 * its message (`@change`/`@input` → `errors.clear('username')`, or `errors.watchModel(model)`).
 */
export function useFormErrors(knownFields: readonly string[] = []) {
  const fields = reactive<Record<string, string[]>>({})
  const formError = ref<string | null>(null)

  function reset(): void {
    for (const key of Object.keys(fields)) delete fields[key]
    formError.value = null
  }

  /**
   * Show an error: field messages on their fields (dotted nested keys are kept, and the top-level field gets
   * them too); anything not on a known field (when `knownFields` is given) goes to the form-level message.
   */
  function apply(err: unknown): ApiError {
    const error = toApiError(err)
    reset()
    const stray: string[] = []
    for (const [key, messages] of Object.entries(error.fieldErrors)) {
      const top = key.split('.')[0]!
      if (knownFields.length && !knownFields.includes(key) && !knownFields.includes(top)) {
        stray.push(...messages.map((m) => `${key}: ${m}`))
        continue
      }
      fields[key] = messages
      if (top !== key) fields[top] = [...(fields[top] ?? []), ...messages]
    }
    const fieldCount = Object.keys(error.fieldErrors).length
    if (!fieldCount || stray.length || !error.isValidation) {
      formError.value = stray.length && fieldCount ? stray.join(' ') : error.message
    }
    return error
  }

  function clear(field: string): void {
    delete fields[field]
  }

  function bind(field: string): { validateStatus?: 'error'; help?: string } {
    const messages = fields[field]
    return messages?.length ? { validateStatus: 'error', help: messages.join(' ') } : {}
  }

  return { fields, formError, reset, apply, clear, bind }
}
