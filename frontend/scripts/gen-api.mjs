#!/usr/bin/env node
// Regenerate src/api/schema.d.ts from the server's OpenAPI schema.
//
//   npm run gen:api                      dump the schema with the project's venv (no server needed)
//   GRIDFLEET_SCHEMA_URL=http://127.0.0.1:8765/api/schema/ npm run gen:api   fetch it from a running serve
//
// The dump uses `python -m django spectacular` with DJANGO_SETTINGS_MODULE=gridfleet.server.settings and a
// throw-away GRIDFLEET_DB in a temporary directory (settings write key files next to the database).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const frontend = resolve(here, '..')
const root = resolve(frontend, '..')
const out = join(frontend, 'src/api/schema.d.ts')
const work = mkdtempSync(join(tmpdir(), 'gridfleet-schema-'))
const schemaFile = join(work, 'schema.json')

try {
  const url = process.env.GRIDFLEET_SCHEMA_URL
  if (url) {
    const response = await fetch(url, { headers: { Accept: 'application/vnd.oai.openapi+json' } })
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`)
    writeFileSync(schemaFile, await response.text())
  } else {
    const python = process.env.GRIDFLEET_PYTHON ?? join(root, '.venv/bin/python')
    if (!existsSync(python)) throw new Error(`no Python at ${python}: run scripts/bootstrap.sh, or set GRIDFLEET_SCHEMA_URL`)
    execFileSync(python, ['-m', 'django', 'spectacular', '--format', 'openapi-json', '--file', schemaFile], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        DJANGO_SETTINGS_MODULE: 'gridfleet.server.settings',
        GRIDFLEET_DB: join(work, 'schema.sqlite3'),
      },
    })
  }
  execFileSync(join(frontend, 'node_modules/.bin/openapi-typescript'), [schemaFile, '-o', out], {
    cwd: frontend,
    stdio: 'inherit',
  })
  console.log(`gen:api: wrote ${out}`)
} catch (err) {
  console.error(`gen:api: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
} finally {
  rmSync(work, { recursive: true, force: true })
}
