// /metadata advertises only what works: every search parameter it lists, for every resource type
// it lists, answers a plausible query with 200 even under Prefer: handling=strict; and for the
// seeded resources (rich Patient, Observation and Encounter fixtures, whose every listed parameter
// has a value) each parameter finds its resource with a value taken from it and misses it with a
// value that is not in it. Every _include the statement lists for those types works too.
import { allOk, globalSchema } from '@medplum/core';
import { FhirRouter } from '@medplum/fhir-router';
import type { SearchParameter } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import { definitionsSourceDir } from '../build/server-bundle.js';
import { loadDefinitions } from '../server/definitions.js';
import { capabilityStatement } from '../server/capability.js';
import { valuesOf } from '../server/match.js';
import { statusOf, type FhirClient, type Resource } from './scenario.js';
import { idsOf, raw, useBareServer } from './r4-server.js';

// Every search parameter of every type (AuditEvent's among them): the server's own audit trail
// would be in the way, and a token adds nothing here.
const server = useBareServer({ auth: false });
const UCUM = 'http://unitsofmeasure.org';
const SCT = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const META = {
  profile: ['http://example.org/fhir/StructureDefinition/seeded'],
  security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }],
  tag: [{ system: 'http://example.org/tags', code: 'seeded' }],
  source: 'http://example.org/source',
};
const cc = (code: string, system = SCT) => ({ coding: [{ system, code }] });
const ident = (value: string) => [{ system: 'http://example.org/ids', value }];

/** The fixtures: every parameter /metadata lists for these types has a value in one of them. */
function fixtures(ref: { practitioner: string; organization: string }): Resource[] {
  const practitioner = { reference: `Practitioner/${ref.practitioner}` };
  const organization = { reference: `Organization/${ref.organization}` };
  const patient = {
    resourceType: 'Patient',
    meta: META,
    identifier: ident('M1'),
    active: true,
    name: [{ family: 'Seedling', given: ['Ada'], text: 'Ada Seedling' }],
    telecom: [
      { system: 'phone', value: '555-0100' },
      { system: 'email', value: 'ada@example.org' },
    ],
    gender: 'female',
    birthDate: '1980-02-03',
    deceasedDateTime: '2020-01-01',
    address: [{ use: 'home', line: ['1 Main St'], city: 'Lagos', state: 'LA', postalCode: '10001', country: 'NG' }],
    communication: [{ language: cc('en', 'urn:ietf:bcp:47') }],
    generalPractitioner: [practitioner],
    managingOrganization: organization,
    link: [{ other: { reference: 'Patient/linked-1' }, type: 'seealso' }],
  };
  const observation = (extra: Record<string, unknown>) => ({
    resourceType: 'Observation',
    meta: META,
    identifier: ident('O1'),
    basedOn: [{ reference: 'ServiceRequest/sr-1' }],
    partOf: [{ reference: 'Procedure/proc-1' }],
    status: 'final',
    category: [cc('vital-signs', 'http://terminology.hl7.org/CodeSystem/observation-category')],
    code: cc('8867-4', LOINC),
    subject: { reference: 'Patient/pending' },
    focus: [{ reference: 'Condition/cond-1' }],
    encounter: { reference: 'Encounter/enc-1' },
    effectiveDateTime: '2024-03-04T10:00:00Z',
    performer: [practitioner],
    method: cc('29303009'),
    specimen: { reference: 'Specimen/spec-1' },
    device: { reference: 'Device/dev-1' },
    hasMember: [{ reference: 'Observation/member-1' }],
    derivedFrom: [{ reference: 'DocumentReference/doc-1' }],
    ...extra,
  });
  const observations = [
    observation({
      valueQuantity: { value: 72, unit: 'beats/minute', system: UCUM, code: '/min' },
      component: [
        { code: cc('8480-6', LOINC), valueQuantity: { value: 120, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' } },
        { code: cc('8462-4', LOINC), valueCodeableConcept: cc('373066001') },
        { code: cc('9279-1', LOINC), dataAbsentReason: cc('unknown', 'http://terminology.hl7.org/CodeSystem/data-absent-reason') },
      ],
    }),
    observation({ valueCodeableConcept: { ...cc('260385009'), text: 'Negative' } }),
    observation({ dataAbsentReason: cc('asked-unknown', 'http://terminology.hl7.org/CodeSystem/data-absent-reason') }),
    observation({ valueString: 'slightly elevated' }),
    observation({ valueDateTime: '2024-02-01T08:00:00Z' }),
  ];
  const encounter = {
    resourceType: 'Encounter',
    meta: META,
    identifier: ident('E1'),
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    type: [cc('11429006')],
    subject: { reference: 'Patient/pending' },
    episodeOfCare: [{ reference: 'EpisodeOfCare/eoc-1' }],
    basedOn: [{ reference: 'ServiceRequest/sr-1' }],
    participant: [{ type: [cc('PPRF', 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType')], individual: practitioner }],
    appointment: [{ reference: 'Appointment/appt-1' }],
    period: { start: '2024-03-04T09:00:00Z', end: '2024-03-04T10:00:00Z' },
    length: { value: 60, unit: 'min', system: UCUM, code: 'min' },
    reasonCode: [cc('25064002')],
    reasonReference: [{ reference: 'Condition/cond-1' }],
    diagnosis: [{ condition: { reference: 'Condition/cond-1' } }],
    account: [{ reference: 'Account/acct-1' }],
    hospitalization: { specialArrangement: [cc('wheel', 'http://terminology.hl7.org/CodeSystem/encounter-special-arrangements')] },
    location: [{ location: { reference: 'Location/loc-1' }, period: { start: '2024-03-04T09:00:00Z', end: '2024-03-04T10:00:00Z' } }],
    serviceProvider: organization,
    partOf: { reference: 'Encounter/enc-0' },
  };
  return [patient, ...observations, encounter];
}

/** A query value that must find the resource holding this value, and one that must not. */
function queries(sp: SearchParameter, value: { type: string; value: any }): { hit: string; miss: string } | undefined {
  const v = value.value;
  const miss = {
    string: 'zzqxv',
    token: 'no-such-code-zz',
    reference: 'Patient/no-such-id',
    date: '1801-01-01',
    number: '-987654',
    quantity: '-987654',
    uri: 'http://no.such.example/zz',
  }[sp.type as string];
  if (miss === undefined || v === undefined || v === null) return undefined;
  const first = (x: Record<string, unknown> | undefined) => x && `${x.system ?? ''}|${x.code ?? x.value}`;
  let hit: string | undefined;
  switch (sp.type) {
    case 'string':
      hit = typeof v === 'string' ? v : (v.family ?? v.given?.[0] ?? v.city ?? v.line?.[0] ?? v.text);
      if (hit) hit = hit.slice(0, 4); // starts-with
      break;
    case 'token':
      if (typeof v !== 'object') hit = String(v);
      else if (value.type === 'CodeableConcept') hit = first(v.coding?.[0]) ?? v.text;
      else if (value.type === 'ContactPoint') hit = v.value;
      else hit = first(v);
      break;
    case 'reference':
      hit = typeof v === 'string' ? v : v.reference;
      break;
    case 'date':
      hit = (typeof v === 'string' ? v : v.start)?.slice(0, 10);
      break;
    case 'number':
      hit = typeof v === 'number' ? String(v) : undefined;
      break;
    case 'quantity':
      hit = v.value === undefined ? undefined : v.code ? `${v.value}|${v.system ?? ''}|${v.code}` : String(v.value);
      break;
    case 'uri':
      hit = typeof v === 'string' ? v : undefined;
      break;
  }
  return hit ? { hit, miss } : undefined;
}

const PLAUSIBLE: Record<string, (sp: { name: string }) => string> = {
  string: () => 'a',
  token: () => 'x',
  reference: () => 'Patient/x',
  date: () => 'ge2000-01-01',
  number: () => 'gt1',
  quantity: () => 'gt1',
  uri: () => 'http://example.org/x',
};

type CapabilityResource = {
  type: string;
  searchParam?: Array<{ name: string; type: string }>;
  searchInclude?: string[];
  searchRevInclude?: string[];
};

describe('/metadata lists only what works', () => {
  let client: FhirClient;
  let base: string;
  let resources: CapabilityResource[];
  const seeded: Resource[] = [];

  beforeAll(async () => {
    loadDefinitions(definitionsSourceDir());
    ({ client, baseUrl: base } = server.get());
    const statement = await client.capabilityStatement();
    resources = statement.rest[0].resource;
    const practitioner = (
      await client.create({ resourceType: 'Practitioner', body: { resourceType: 'Practitioner', name: [{ family: 'Hopper' }] } })
    ).id;
    const organization = (await client.create({ resourceType: 'Organization', body: { resourceType: 'Organization', name: 'Acme' } })).id;
    let patientId = '';
    for (const body of fixtures({ practitioner, organization })) {
      const withSubject = body.resourceType === 'Patient' ? body : { ...body, subject: { reference: `Patient/${patientId}` } };
      const created = await client.create({ resourceType: body.resourceType, body: withSubject });
      expect(statusOf(created)).toBe(201);
      if (body.resourceType === 'Patient') patientId = created.id;
      seeded.push(created);
    }
  });

  it('lists no composite or special parameters, and every resource type it serves', () => {
    const types = resources.flatMap((r) => (r.searchParam ?? []).map((p) => p.type));
    expect(types.length).toBeGreaterThan(2000);
    expect(new Set(types)).toEqual(new Set(['string', 'token', 'reference', 'date', 'number', 'quantity', 'uri']));
    expect(resources.map((r) => r.type)).toEqual(expect.arrayContaining(['Patient', 'Observation', 'Encounter', 'Binary']));
    const patient = resources.find((r) => r.type === 'Patient')!.searchParam!.map((p) => p.name);
    expect(patient).toEqual(expect.arrayContaining(['_id', '_lastUpdated', 'name', 'family', 'birthdate', 'identifier']));
    expect(patient).not.toContain('_compartment'); // Medplum's, not R4
    expect(patient).not.toContain('phonetic'); // would be a plain string match, not sounds-like
    const observation = resources.find((r) => r.type === 'Observation')!.searchParam!.map((p) => p.name);
    expect(observation).toContain('value-quantity');
    expect(observation).not.toContain('code-value-quantity'); // composite
  });

  it('lists type and system history once the router has those routes', () => {
    const codes = (cs: ReturnType<typeof capabilityStatement>) => ({
      type: cs.rest![0].resource!.find((r) => r.type === 'Patient')!.interaction!.map((i) => i.code),
      system: cs.rest![0].interaction!.map((i) => i.code),
    });
    const plain = codes(capabilityStatement({ name: 't', version: '0' }, new FhirRouter()));
    expect(plain.type).not.toContain('history-type');
    expect(plain.system).not.toContain('history-system');
    const router = new FhirRouter();
    router.add('GET', ':resourceType/_history', async () => [allOk], 'history-type');
    router.add('GET', '_history', async () => [allOk], 'history-system');
    const routed = codes(capabilityStatement({ name: 't', version: '0' }, router));
    expect(routed.type).toContain('history-type');
    expect(routed.system).toContain('history-system');
  });

  it('answers every listed parameter of every listed type with 200, even under Prefer: handling=strict', async () => {
    const queue = resources.flatMap((r) =>
      (r.searchParam ?? []).map((p) => `/${r.type}?${p.name}=${encodeURIComponent(PLAUSIBLE[p.type](p))}`),
    );
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      for (let path = queue.pop(); path; path = queue.pop()) {
        const r = await raw(base, 'GET', path, { headers: { prefer: 'handling=strict' } });
        if (r.status !== 200 || r.json?.resourceType !== 'Bundle' || r.json.type !== 'searchset')
          failures.push(`${path}: ${r.status} ${r.text.slice(0, 200)}`);
      }
    };
    await Promise.all([1, 2, 3, 4].map(worker));
    expect(failures).toEqual([]);
  }, 300_000);

  it('finds each seeded resource by every parameter listed for its type, and misses it by a value it lacks', async () => {
    const failures: string[] = [];
    const uncovered: string[] = [];
    for (const type of ['Patient', 'Observation', 'Encounter']) {
      const params = resources.find((r) => r.type === type)!.searchParam!;
      for (const p of params) {
        let covered = false;
        for (const resource of seeded.filter((r) => r.resourceType === type)) {
          const definition = globalSchema.types[type].searchParams![p.name];
          const q = valuesOf(resource as never, definition)
            .map((v) => queries(definition, v))
            .find(Boolean);
          if (!q) continue;
          covered = true;
          const ref = `${type}/${resource.id}`;
          const hit = await raw(base, 'GET', `/${type}?${p.name}=${encodeURIComponent(q.hit)}&_count=1000`, {
            headers: { prefer: 'handling=strict' },
          });
          if (hit.status !== 200 || !idsOf(hit.json).includes(ref))
            failures.push(`${type}?${p.name}=${q.hit} did not find ${ref} (${hit.status})`);
          const miss = await raw(base, 'GET', `/${type}?${p.name}=${encodeURIComponent(q.miss)}&_count=1000`, {
            headers: { prefer: 'handling=strict' },
          });
          if (miss.status !== 200 || idsOf(miss.json).includes(ref))
            failures.push(`${type}?${p.name}=${q.miss} found ${ref} (${miss.status})`);
          const missing = await raw(base, 'GET', `/${type}?${p.name}:missing=false&_count=1000`);
          if (!idsOf(missing.json).includes(ref)) failures.push(`${type}?${p.name}:missing=false did not find ${ref}`);
          break;
        }
        if (!covered) uncovered.push(`${type}.${p.name}`);
      }
    }
    expect(failures).toEqual([]);
    expect(uncovered).toEqual([]); // the fixtures give every listed parameter of these types a value
  }, 120_000);

  it('includes along every _include and _revinclude it lists for the seeded types', async () => {
    const observation = seeded.find((r) => r.resourceType === 'Observation')!;
    const patient = seeded.find((r) => r.resourceType === 'Patient')!;
    const obs = resources.find((r) => r.type === 'Observation')!;
    for (const include of obs.searchInclude!) {
      const r = await raw(base, 'GET', `/Observation?_id=${observation.id}&_include=${include}`, {
        headers: { prefer: 'handling=strict' },
      });
      expect(r.status, include).toBe(200);
    }
    const subject = await raw(base, 'GET', `/Observation?_id=${observation.id}&_include=Observation:subject`);
    expect(idsOf(subject.json, 'include')).toEqual([`Patient/${patient.id}`]);
    const pat = resources.find((r) => r.type === 'Patient')!;
    expect(pat.searchRevInclude).toEqual(expect.arrayContaining(['Observation:subject', 'Encounter:patient']));
    for (const revinclude of pat.searchRevInclude!) {
      const r = await raw(base, 'GET', `/Patient?_id=${patient.id}&_revinclude=${revinclude}`, { headers: { prefer: 'handling=strict' } });
      expect(r.status, revinclude).toBe(200);
    }
    const rev = await raw(base, 'GET', `/Patient?_id=${patient.id}&_revinclude=Observation:subject&_revinclude=Encounter:subject`);
    expect(idsOf(rev.json, 'include').length).toBe(seeded.length - 1); // five observations and the encounter
  });
});
