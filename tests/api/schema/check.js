// check.js: validates ember's API responses against the schemas of the
// Firecracker OpenAPI file (swagger 2.0 definitions are JSON Schema draft 4
// objects, which ajv reads with strict mode off).
//
//   node check.js SPEC.yaml RESPONSES.jsonl
//
// Each line of RESPONSES.jsonl: {"what": "GET /", "def": "InstanceInfo",
// "body": <the response body>}. The check is stricter than the spec in one
// way: an object that lists its properties may not carry others, so a field
// ember invents (or misspells) in a response fails here.
'use strict';
const fs = require('fs');
const yaml = require('js-yaml');
const Ajv = require('ajv');

const spec = yaml.load(fs.readFileSync(process.argv[2], 'utf8'));
const defs = spec.definitions;

// It is looser in another: Firecracker writes an optional field it has no
// value for as null (serde's Option), which the spec does not say, so an
// optional property may be null.
function tighten(s) {
  if (Array.isArray(s)) {
    s.forEach(tighten);
  } else if (s && typeof s === 'object') {
    for (const k of Object.keys(s)) tighten(s[k]);
    if (s.type === 'object' && s.properties) {
      if (s.additionalProperties === undefined) s.additionalProperties = false;
      const required = new Set(s.required || []);
      for (const [k, p] of Object.entries(s.properties))
        if (!required.has(k)) s.properties[k] = { anyOf: [p, { type: 'null' }] };
    }
  }
}
tighten(defs);

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ $id: 'spec', definitions: defs });

const lines = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter((l) => l.trim());
let ok = 0, bad = 0;
const seen = new Set();
for (const line of lines) {
  const c = JSON.parse(line);
  const validate = ajv.getSchema('spec#/definitions/' + c.def);
  if (!validate) {
    console.log(`FAIL schema: ${c.what}: no definition ${c.def} in the spec`);
    bad++;
    continue;
  }
  seen.add(c.def);
  if (validate(c.body)) {
    ok++;
  } else {
    bad++;
    console.log(`FAIL schema: ${c.what}: not a valid ${c.def}: ` +
                ajv.errorsText(validate.errors) + `\n  body: ${JSON.stringify(c.body)}`);
  }
}
console.log(`schema: ${ok} responses valid, ${bad} invalid (definitions: ${[...seen].sort().join(', ')})`);
process.exit(bad || ok === 0 ? 1 : 0);
