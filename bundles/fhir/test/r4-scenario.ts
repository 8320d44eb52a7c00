// Seed data and the representative R4 checks both the bare tests (r4-search/r4-http) and the
// in-hako test run: paging links, _include/_revinclude, chains, quantity, system search,
// unknown parameters, unknown types, update-as-create, HEAD, OPTIONS, 415.
import { expect } from 'vitest';
import { failure, statusOf, type FhirClient } from './scenario.js';
import { idsOf, link, raw } from './r4-server.js';

export type Seeded = {
  org: string;
  practitioner: string;
  okafor: string;
  muller: string;
  pagina: string[];
  encounter: string;
  heartRate: string;
  systolic: string;
  temperature: string;
  unitOnly: string;
};

const UCUM = 'http://unitsofmeasure.org';
const LOINC = 'http://loinc.org';

export async function seed(client: FhirClient): Promise<Seeded> {
  const id = async (body: Record<string, unknown>): Promise<string> => {
    const created = await client.create({ resourceType: body.resourceType as string, body: body as never });
    expect(statusOf(created)).toBe(201);
    return created.id;
  };
  const org = await id({ resourceType: 'Organization', name: 'Acme Clinic' });
  const practitioner = await id({ resourceType: 'Practitioner', name: [{ family: 'Hopper', given: ['Grace'] }] });
  const okafor = await id({
    resourceType: 'Patient',
    identifier: [{ system: 'http://hospital.example/mrn', value: '12345' }],
    name: [{ family: 'Okafor', given: ['Ada'] }],
    gender: 'female',
    birthDate: '1980-02-03',
    managingOrganization: { reference: `Organization/${org}` },
  });
  const muller = await id({
    resourceType: 'Patient',
    name: [{ family: 'Müller', given: ['Jürgen'] }],
    gender: 'male',
    birthDate: '1975-06-01',
  });
  const pagina: string[] = [];
  for (let n = 0; n < 7; n++)
    pagina.push(await id({ resourceType: 'Patient', name: [{ family: 'Pagina', given: [`p${n}`] }], birthDate: `2001-01-0${n + 1}` }));
  const encounter = await id({
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject: { reference: `Patient/${okafor}` },
  });
  const observation = (code: string, display: string, valueQuantity: Record<string, unknown>, subject = okafor) =>
    id({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: LOINC, code, display }] },
      subject: { reference: `Patient/${subject}` },
      encounter: { reference: `Encounter/${encounter}` },
      performer: [{ reference: `Practitioner/${practitioner}` }],
      effectiveDateTime: '2024-03-04T10:00:00Z',
      valueQuantity,
    });
  const heartRate = await observation('8867-4', 'Heart rate', { value: 72, unit: 'beats/minute', system: UCUM, code: '/min' });
  const systolic = await observation('8480-6', 'Systolic blood pressure', { value: 120, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' });
  const temperature = await observation('8310-5', 'Body temperature', { value: 37.5, unit: 'Cel', system: UCUM, code: 'Cel' }, muller);
  const unitOnly = await observation('8462-4', 'Diastolic blood pressure', { value: 80, unit: 'mm[Hg]' }, muller);
  return { org, practitioner, okafor, muller, pagina, encounter, heartRate, systolic, temperature, unitOnly };
}

const search = (
  client: FhirClient,
  resourceType: string,
  searchParams: Record<string, string | string[]>,
  options?: Record<string, unknown>,
) => client.search({ resourceType, searchParams: searchParams as never, options: options as never });

/** Paging: total, absolute self/first/next/previous/last links built from the request's host, followed to the end. */
export async function pagingWorks(client: FhirClient, baseUrl: string, s: Seeded): Promise<void> {
  const first = await search(client, 'Patient', { family: 'Pagina', _count: '3' });
  expect(first.total).toBe(7);
  expect(first.entry).toHaveLength(3);
  expect(link(first, 'self')).toBe(`${baseUrl}/Patient?family=Pagina&_count=3`);
  expect(link(first, 'first')).toBe(`${baseUrl}/Patient?family=Pagina&_count=3`);
  expect(link(first, 'next')).toBe(`${baseUrl}/Patient?family=Pagina&_count=3&_offset=3`);
  expect(link(first, 'last')).toBe(`${baseUrl}/Patient?family=Pagina&_count=3&_offset=6`);
  expect(link(first, 'previous')).toBeUndefined();
  const seen = [...idsOf(first)];
  let page = first;
  let pages = 1;
  while (link(page, 'next')) {
    page = (await client.nextPage({ bundle: page })) as typeof first;
    pages++;
    expect(page.total).toBe(7);
    expect(link(page, 'previous')).toBeDefined();
    seen.push(...idsOf(page));
  }
  expect(pages).toBe(3);
  expect([...seen].sort()).toEqual(s.pagina.map((id) => `Patient/${id}`).sort());
  const back = (await client.prevPage({ bundle: page })) as typeof first;
  expect(idsOf(back)).toEqual(seen.slice(3, 6)); // the default order is stable: first created first
  expect(link(back, 'self')).toBe(`${baseUrl}/Patient?family=Pagina&_count=3&_offset=3`);

  // The links name the host the client used.
  const viaName = await raw(baseUrl, 'GET', '/Patient?family=Pagina&_count=2', { headers: { host: 'fhir.example.test:8443' } });
  expect(viaName.status).toBe(200);
  expect(link(viaName.json, 'next')).toBe('http://fhir.example.test:8443/Patient?family=Pagina&_count=2&_offset=2');
  expect(viaName.json.entry[0].fullUrl).toMatch(/^http:\/\/fhir\.example\.test:8443\/Patient\/[\w-]+$/);

  // _count=0 and _summary=count: the total alone.
  const counted = await search(client, 'Patient', { family: 'Pagina', _summary: 'count' });
  expect(counted.total).toBe(7);
  expect(counted.entry).toBeUndefined();
  expect((await search(client, 'Patient', { family: 'Pagina', _count: '0' })).entry).toBeUndefined();
}

/** _include (with a target type and :iterate) and _revinclude: search.mode include, no duplicates. */
export async function includesWork(client: FhirClient, s: Seeded): Promise<void> {
  const inc = await search(client, 'Observation', { code: `${LOINC}|8867-4`, _include: 'Observation:subject' });
  expect(idsOf(inc)).toEqual([`Observation/${s.heartRate}`]);
  expect(idsOf(inc, 'include')).toEqual([`Patient/${s.okafor}`]);
  expect(inc.total).toBe(1);

  const typed = await search(client, 'Observation', {
    subject: `Patient/${s.okafor}`,
    _include: ['Observation:subject:Patient', 'Observation:performer'],
  });
  expect(idsOf(typed).sort()).toEqual([`Observation/${s.heartRate}`, `Observation/${s.systolic}`].sort());
  expect(idsOf(typed, 'include').sort()).toEqual([`Patient/${s.okafor}`, `Practitioner/${s.practitioner}`].sort()); // each once

  const iterate = await search(client, 'Observation', {
    code: '8867-4',
    _include: 'Observation:subject',
    '_include:iterate': 'Patient:organization',
  });
  expect(idsOf(iterate, 'include').sort()).toEqual([`Organization/${s.org}`, `Patient/${s.okafor}`].sort());
  const notIterated = await search(client, 'Observation', { code: '8867-4', _include: ['Observation:subject', 'Patient:organization'] });
  expect(idsOf(notIterated, 'include')).toEqual([`Patient/${s.okafor}`]);

  const rev = await search(client, 'Patient', { _id: s.okafor, _revinclude: ['Observation:subject', 'Encounter:patient'] });
  expect(idsOf(rev)).toEqual([`Patient/${s.okafor}`]);
  expect(idsOf(rev, 'include').sort()).toEqual(
    [`Encounter/${s.encounter}`, `Observation/${s.heartRate}`, `Observation/${s.systolic}`].sort(),
  );
}

/** Chained parameters, one and two levels, with and without the :Type modifier. */
export async function chainsWork(client: FhirClient, s: Seeded): Promise<void> {
  const okaforObs = [`Observation/${s.heartRate}`, `Observation/${s.systolic}`].sort();
  expect(idsOf(await search(client, 'Observation', { 'subject:Patient.name': 'Okafor' })).sort()).toEqual(okaforObs);
  expect(idsOf(await search(client, 'Observation', { 'subject.family': 'okaf' })).sort()).toEqual(okaforObs);
  expect(idsOf(await search(client, 'Observation', { 'patient.birthdate': '1975-06-01' })).sort()).toEqual(
    [`Observation/${s.temperature}`, `Observation/${s.unitOnly}`].sort(),
  );
  expect(idsOf(await search(client, 'Observation', { 'subject:Patient.organization.name': 'Acme' })).sort()).toEqual(okaforObs);
  expect(idsOf(await search(client, 'Encounter', { 'subject:Patient.identifier': 'http://hospital.example/mrn|12345' }))).toEqual([
    `Encounter/${s.encounter}`,
  ]);
  expect((await search(client, 'Observation', { 'subject:Patient.name': 'Nobody' })).total).toBe(0);
}

/** value-quantity: a number, prefixes, number||unit and number|system|code. */
export async function quantityWorks(client: FhirClient, s: Seeded): Promise<void> {
  const q = async (value: string) => idsOf(await search(client, 'Observation', { 'value-quantity': value })).sort();
  expect(await q('72')).toEqual([`Observation/${s.heartRate}`]);
  expect(await q('72.0')).toEqual([`Observation/${s.heartRate}`]);
  expect(await q('gt70')).toEqual([`Observation/${s.heartRate}`, `Observation/${s.systolic}`, `Observation/${s.unitOnly}`].sort());
  expect(await q('lt40')).toEqual([`Observation/${s.temperature}`]);
  expect(await q('ge120')).toEqual([`Observation/${s.systolic}`]);
  expect(await q('120||mm[Hg]')).toEqual([`Observation/${s.systolic}`]);
  expect(await q('80||mm[Hg]')).toEqual([`Observation/${s.unitOnly}`]); // matched by unit, no system
  expect(await q(`72|${UCUM}|/min`)).toEqual([`Observation/${s.heartRate}`]);
  expect(await q('72||mm[Hg]')).toEqual([]);
  expect(await q('73')).toEqual([]);
}

/** GET [base]?_type=…, GET [base]/_search and POST [base]/_search (form). */
export async function systemSearchWorks(client: FhirClient, baseUrl: string, s: Seeded): Promise<void> {
  const both = await client.systemSearch({ searchParams: { _type: 'Patient,Observation', _count: 100 } as never });
  const patients = (await search(client, 'Patient', { _summary: 'count' })).total;
  const observations = (await search(client, 'Observation', { _summary: 'count' })).total;
  expect(observations).toBe(4);
  expect(both.total).toBe(patients + observations);
  expect(new Set(idsOf(both).map((id) => id.split('/')[0]))).toEqual(new Set(['Patient', 'Observation']));
  expect(link(both, 'self')).toBe(`${baseUrl}/?_type=Patient,Observation&_count=100`);
  const byId = await client.systemSearch({
    searchParams: { _type: 'Patient,Observation', _id: `${s.okafor},${s.heartRate}` } as never,
    options: { postSearch: true } as never,
  });
  expect(idsOf(byId).sort()).toEqual([`Observation/${s.heartRate}`, `Patient/${s.okafor}`].sort());
  const all = (await raw(baseUrl, 'GET', `/_search?_id=${s.org}`)).json;
  expect(idsOf(all)).toEqual([`Organization/${s.org}`]);
  const bad = await failure(client.systemSearch({ searchParams: { _type: 'Patient,NoSuchType' } as never }));
  expect(bad.status).toBe(400);
}

/** Unknown parameters: ignored and reported (lenient), a 400 with Prefer: handling=strict; an unknown type is a 404. */
export async function unknownsHandled(client: FhirClient, baseUrl: string, s: Seeded): Promise<void> {
  const lenient = await search(client, 'Patient', { family: 'Okafor', 'no-such-param': 'x' });
  expect(idsOf(lenient)).toEqual([`Patient/${s.okafor}`]);
  expect(link(lenient, 'self')).toBe(`${baseUrl}/Patient?family=Okafor&_count=20`);
  const warning = lenient.entry.find((e: { search: { mode: string } }) => e.search.mode === 'outcome');
  expect(warning.resource.resourceType).toBe('OperationOutcome');
  expect(warning.resource.issue[0]).toMatchObject({ severity: 'warning', code: 'not-supported' });
  expect(warning.resource.issue[0].diagnostics).toContain('no-such-param');

  const strict = await failure(
    search(client, 'Patient', { family: 'Okafor', 'no-such-param': 'x' }, { headers: { Prefer: 'handling=strict' } }),
  );
  expect(strict.status).toBe(400);
  expect(strict.data.resourceType).toBe('OperationOutcome');
  expect(JSON.stringify(strict.data)).toContain('no-such-param');
  expect(idsOf(await search(client, 'Patient', { family: 'Okafor' }, { headers: { Prefer: 'handling=strict' } }))).toEqual([
    `Patient/${s.okafor}`,
  ]);

  const noType = await failure(client.search({ resourceType: 'NoSuchType', searchParams: {} as never }));
  expect(noType.status).toBe(404);
  expect(noType.data.resourceType).toBe('OperationOutcome');
  expect(JSON.stringify(noType.data)).toContain('NoSuchType');
  expect((await failure(client.read({ resourceType: 'NoSuchType', id: 'x' }))).status).toBe(404);
}

/** PUT of a new id creates (201, absolute Location); HEAD and OPTIONS answer; a form body to a resource endpoint is a 415. */
export async function httpDetailsWork(client: FhirClient, baseUrl: string): Promise<void> {
  const id = `put-${Date.now()}`;
  const put = await raw(baseUrl, 'PUT', `/Patient/${id}`, {
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', id, active: true }),
  });
  expect(put.status).toBe(201);
  const vid = put.json.meta.versionId;
  expect(put.headers.location).toBe(`${baseUrl}/Patient/${id}/_history/${vid}`);
  expect(put.headers['content-location']).toBe(`${baseUrl}/Patient/${id}/_history/${vid}`);
  const again = await client.update({ resourceType: 'Patient', id, body: { resourceType: 'Patient', id, active: false } });
  expect(statusOf(again)).toBe(200);

  const head = await raw(baseUrl, 'HEAD', `/Patient/${id}`);
  expect(head.status).toBe(200);
  expect(head.text).toBe('');
  expect(head.headers.etag).toBe(`W/"${again.meta.versionId}"`);
  expect((await raw(baseUrl, 'HEAD', '/Patient?active=false')).status).toBe(200);
  expect((await raw(baseUrl, 'HEAD', '/NoSuchType')).status).toBe(404);

  const options = await raw(baseUrl, 'OPTIONS', '/');
  expect(options.status).toBe(200);
  expect(options.headers.allow).toContain('GET');
  expect(options.json.resourceType).toBe('CapabilityStatement');
  const typeOptions = await raw(baseUrl, 'OPTIONS', '/Patient');
  expect(typeOptions.status).toBe(200);
  expect(String(typeOptions.headers.allow).split(', ')).toEqual(expect.arrayContaining(['GET', 'POST', 'PUT', 'DELETE']));

  const form = await raw(baseUrl, 'POST', '/Patient', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'resourceType=Patient&active=true',
  });
  expect(form.status).toBe(415);
  expect(form.json.resourceType).toBe('OperationOutcome');
  expect(form.json.issue[0].diagnostics).toContain('application/fhir+json');
  // …but form-encoded search parameters are what POST [type]/_search takes.
  const posted = await client.search({ resourceType: 'Patient', searchParams: { _id: id }, options: { postSearch: true } as never });
  expect(idsOf(posted)).toEqual([`Patient/${id}`]);
}
