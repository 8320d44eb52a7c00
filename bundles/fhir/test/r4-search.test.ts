// FHIR R4 search as clients use it (search.html, http.html#paging), against the bundled server run
// bare, through fhir-kit-client: paging links, _include/_revinclude, chains, quantity, system
// search, unknown parameters, unknown types, and the parameter types' matching rules.
import { beforeAll, describe, expect, it } from 'vitest';
import { failure, type FhirClient } from './scenario.js';
import {
  chainsWork,
  includesWork,
  pagingWorks,
  quantityWorks,
  seed,
  systemSearchWorks,
  unknownsHandled,
  type Seeded,
} from './r4-scenario.js';
import { idsOf, link, raw, useBareServer } from './r4-server.js';

const server = useBareServer();
let client: FhirClient;
let base: string;
let s: Seeded;

beforeAll(async () => {
  client = server.get().client;
  base = server.get().baseUrl;
  s = await seed(client);
});

const find = async (resourceType: string, searchParams: Record<string, string | string[]>): Promise<string[]> =>
  idsOf(await client.search({ resourceType, searchParams: searchParams as never })).sort();

describe('search on the bare server', () => {
  it('pages with absolute self/first/previous/next/last links, _count, _offset and an exact total', async () => {
    await pagingWorks(client, base, s);
    const page = await client.search({ resourceType: 'Patient', searchParams: { family: 'Pagina', _count: 2, _offset: 5 } as never });
    expect(page.entry).toHaveLength(2);
    expect(link(page, 'previous')).toBe(`${base}/Patient?family=Pagina&_count=2&_offset=3`);
    expect(link(page, 'next')).toBeUndefined();
    const past = await client.search({ resourceType: 'Patient', searchParams: { family: 'Pagina', _offset: 50 } as never });
    expect(past.total).toBe(7);
    expect(past.entry).toBeUndefined();
    // Without _count a page is 20; above 1000 it is 1000.
    expect(link(await client.search({ resourceType: 'Patient', searchParams: {} as never }), 'self')).toBe(`${base}/Patient?_count=20`);
    expect(link(await client.search({ resourceType: 'Patient', searchParams: { _count: 5000 } as never }), 'self')).toBe(
      `${base}/Patient?_count=1000`,
    );
    expect((await failure(client.search({ resourceType: 'Patient', searchParams: { _count: 'many' } as never }))).status).toBe(400);
  });

  it('includes and reverse-includes referenced resources (search.mode include, :iterate, target types)', async () => {
    await includesWork(client, s);
    const wildcard = await client.search({
      resourceType: 'Observation',
      searchParams: { _id: s.heartRate, _include: 'Observation:*' } as never,
    });
    expect(idsOf(wildcard, 'include').sort()).toEqual(
      [`Encounter/${s.encounter}`, `Patient/${s.okafor}`, `Practitioner/${s.practitioner}`].sort(),
    );
    const star = await client.search({ resourceType: 'Observation', searchParams: { _id: s.heartRate, _include: '*' } as never });
    expect(idsOf(star, 'include').sort()).toEqual(idsOf(wildcard, 'include').sort());
    // Included resources come with the page of matches they belong to and do not count in the total.
    const paged = await client.search({
      resourceType: 'Observation',
      searchParams: { subject: `Patient/${s.okafor}`, _count: 1, _include: 'Observation:subject' } as never,
    });
    expect(paged.total).toBe(2);
    expect(idsOf(paged, 'include')).toEqual([`Patient/${s.okafor}`]);
    expect(link(paged, 'next')).toContain('_include=Observation:subject');
  });

  it('follows chained parameters', async () => {
    await chainsWork(client, s);
  });

  it('matches quantity parameters (value-quantity) with prefixes and units', async () => {
    await quantityWorks(client, s);
  });

  it('searches several types at once (_type, /_search by GET and by POST)', async () => {
    await systemSearchWorks(client, base, s);
  });

  it('ignores and reports unknown parameters, refuses them when strict, answers 404 for an unknown type', async () => {
    await unknownsHandled(client, base, s);
    // An unknown step in a chain is an unknown parameter too; an unsupported modifier is an error.
    const chain = await client.search({
      resourceType: 'Observation',
      searchParams: { 'subject:Patient.no-such': 'x', code: '8867-4' } as never,
    });
    expect(idsOf(chain)).toEqual([`Observation/${s.heartRate}`]);
    const modifier = await failure(client.search({ resourceType: 'Patient', searchParams: { 'name:sounds-like': 'x' } as never }));
    expect(modifier.status).toBe(400);
    expect(JSON.stringify(modifier.data)).toContain('sounds-like');
    expect((await failure(client.search({ resourceType: 'Patient', searchParams: { birthdate: 'yesterday' } as never }))).status).toBe(400);
  });

  it('matches strings from the start, ignoring case and accents; :contains and :exact', async () => {
    expect(await find('Patient', { family: 'oka' })).toEqual([`Patient/${s.okafor}`]);
    expect(await find('Patient', { family: 'kafor' })).toEqual([]);
    expect(await find('Patient', { 'family:contains': 'KAFO' })).toEqual([`Patient/${s.okafor}`]);
    expect(await find('Patient', { 'family:exact': 'okafor' })).toEqual([]);
    expect(await find('Patient', { 'family:exact': 'Okafor' })).toEqual([`Patient/${s.okafor}`]);
    expect(await find('Patient', { name: 'muller' })).toEqual([`Patient/${s.muller}`]);
    expect(await find('Patient', { name: 'Ada' })).toEqual([`Patient/${s.okafor}`]); // any part of the name
    expect(await find('Patient', { name: 'Okafor,Müller' })).toEqual([`Patient/${s.okafor}`, `Patient/${s.muller}`].sort()); // OR
    expect(await find('Patient', { name: ['Ada', 'Müller'] })).toEqual([]); // AND
  });

  it('matches tokens, references and dates in their R4 forms', async () => {
    expect(await find('Patient', { identifier: 'http://hospital.example/mrn|12345' })).toEqual([`Patient/${s.okafor}`]);
    expect(await find('Patient', { identifier: '12345' })).toEqual([`Patient/${s.okafor}`]);
    expect(await find('Patient', { identifier: 'http://other.example|12345' })).toEqual([]);
    expect(await find('Patient', { gender: 'female' })).toEqual([`Patient/${s.okafor}`]);
    expect(await find('Patient', { 'gender:not': 'female', family: 'Müller' })).toEqual([`Patient/${s.muller}`]);
    expect(await find('Observation', { 'code:text': 'heart' })).toEqual([`Observation/${s.heartRate}`]);
    expect(await find('Observation', { code: 'Heart rate' })).toEqual([]); // a display is not a code

    const okaforObs = [`Observation/${s.heartRate}`, `Observation/${s.systolic}`].sort();
    expect(await find('Observation', { subject: `Patient/${s.okafor}` })).toEqual(okaforObs);
    expect(await find('Observation', { subject: s.okafor })).toEqual(okaforObs);
    expect(await find('Observation', { 'subject:Patient': s.okafor })).toEqual(okaforObs);
    expect(await find('Observation', { subject: `${base}/Patient/${s.okafor}` })).toEqual(okaforObs);
    expect(await find('Observation', { 'subject:Group': s.okafor })).toEqual([]);
    expect(await find('Patient', { 'organization:missing': 'false' })).toEqual([`Patient/${s.okafor}`]);

    expect(await find('Patient', { birthdate: '1980-02-03' })).toEqual([`Patient/${s.okafor}`]);
    expect(await find('Patient', { birthdate: ['ge1970', 'lt1981'] })).toEqual([`Patient/${s.okafor}`, `Patient/${s.muller}`].sort());
    expect(await find('Patient', { birthdate: '1980' })).toEqual([`Patient/${s.okafor}`]);
    expect(await find('Observation', { date: '2024-03-04', code: '8867-4' })).toEqual([`Observation/${s.heartRate}`]);
    expect(await find('Patient', { _lastUpdated: 'gt2000-01-01', _id: s.muller })).toEqual([`Patient/${s.muller}`]);
  });

  it('sorts by _sort, ascending and descending, and subsets by _elements', async () => {
    const asc = await client.search({ resourceType: 'Patient', searchParams: { family: 'Pagina', _sort: 'birthdate' } as never });
    expect(asc.entry.map((e: { resource: { birthDate: string } }) => e.resource.birthDate)).toEqual(
      [1, 2, 3, 4, 5, 6, 7].map((d) => `2001-01-0${d}`),
    );
    const desc = await client.search({
      resourceType: 'Patient',
      searchParams: { family: 'Pagina', _sort: '-birthdate', _count: 2 } as never,
    });
    expect(desc.entry.map((e: { resource: { birthDate: string } }) => e.resource.birthDate)).toEqual(['2001-01-07', '2001-01-06']);
    expect(link(desc, 'next')).toContain('_sort=-birthdate');
    const latest = await client.search({ resourceType: 'Patient', searchParams: { _sort: '-_lastUpdated', _count: 1 } as never });
    expect(latest.entry[0].resource.id).toBe(s.pagina[6]);

    const slim = await client.search({ resourceType: 'Patient', searchParams: { _id: s.okafor, _elements: 'birthDate' } as never });
    const r = slim.entry[0].resource;
    expect(r.birthDate).toBe('1980-02-03');
    expect(r.name).toBeUndefined();
    expect(r.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
  });

  it('takes form-encoded parameters by POST [type]/_search, merged with the URL query', async () => {
    const posted = await client.search({
      resourceType: 'Patient',
      searchParams: { family: 'Okafor' },
      options: { postSearch: true } as never,
    });
    expect(idsOf(posted)).toEqual([`Patient/${s.okafor}`]);
    const merged = await raw(base, 'POST', '/Patient/_search?gender=male', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=M%C3%BCller',
    });
    expect(merged.status).toBe(200);
    expect(idsOf(merged.json)).toEqual([`Patient/${s.muller}`]);
    const json = await raw(base, 'POST', '/Patient/_search', { headers: { 'content-type': 'application/fhir+json' }, body: '{}' });
    expect(json.status).toBe(415);
  });
});
