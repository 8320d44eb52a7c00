// The FHIR requests both FHIR suites make, bare on the host (bare.test.ts) and in
// hako (in-hako.test.ts): one scenario, so the two prove the same thing.
import { Client, RESPONSE_KEY } from 'fhir-kit-client';
import { expect } from 'vitest';

export type Resource = { resourceType: string; id?: string; [key: string]: unknown };
type Chart = { patient: Resource; encounter: Resource; observation: Resource };

/** Whatever a FHIR response holds; the tests' expectations check the shape. */
type Loose = any;
/** fhir-kit-client's Client with its results read as plain FHIR JSON (its own types are too narrow to read a field). */
export type FhirClient = {
  [K in keyof Client]: Client[K] extends (...args: infer A) => Promise<unknown> ? (...args: A) => Promise<Loose> : Client[K];
};

/** A client for the server at baseUrl, sending the access token when given. */
export function fhirClient(baseUrl: string, bearerToken?: string): FhirClient {
  return new Client({ baseUrl, ...(bearerToken ? { bearerToken } : undefined) }) as unknown as FhirClient;
}

export function statusOf(result: unknown): number {
  return (result as Record<typeof RESPONSE_KEY, Response>)[RESPONSE_KEY].status;
}

/** The status and OperationOutcome of a request that must fail. */
export async function failure(promise: Promise<unknown>): Promise<{ status: number; data: Resource }> {
  try {
    await promise;
  } catch (err) {
    const { status, data } = (err as { response: { status: number; data: Resource } }).response;
    return { status, data };
  }
  throw new Error('the request succeeded but should have failed');
}

/** A patient, an encounter and a heart-rate observation of that encounter; then the searches that find them. */
export async function createAndFindChart(client: FhirClient): Promise<Chart> {
  expect((await client.capabilityStatement()).resourceType).toBe('CapabilityStatement');
  const patient = await client.create({
    resourceType: 'Patient',
    body: { resourceType: 'Patient', name: [{ family: 'Okafor', given: ['Ada'] }], birthDate: '1980-02-03' },
  });
  expect(statusOf(patient)).toBe(201);
  const encounter = await client.create({
    resourceType: 'Encounter',
    body: {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: { reference: `Patient/${patient.id}` },
    },
  });
  const observation = await client.create({
    resourceType: 'Observation',
    body: {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
      subject: { reference: `Patient/${patient.id}` },
      encounter: { reference: `Encounter/${encounter.id}` },
      valueQuantity: { value: 72, unit: 'beats/minute' },
    },
  });

  const read = await client.read({ resourceType: 'Patient', id: patient.id! });
  expect(read.name).toEqual([{ family: 'Okafor', given: ['Ada'] }]);
  expect(read.birthDate).toBe('1980-02-03');
  const ids = (bundle: { entry?: Array<{ resource: Resource }> }) => (bundle.entry ?? []).map((e) => e.resource.id);
  expect(ids(await client.search({ resourceType: 'Patient', searchParams: { family: 'Okafor' } }))).toEqual([patient.id]);
  const bySubjectAndCode = { subject: `Patient/${patient.id}`, code: 'http://loinc.org|8867-4' };
  expect(ids(await client.search({ resourceType: 'Observation', searchParams: bySubjectAndCode }))).toEqual([observation.id]);
  expect(ids(await client.search({ resourceType: 'Encounter', searchParams: { patient: `Patient/${patient.id}` } }))).toEqual([
    encounter.id,
  ]);
  return { patient, encounter, observation };
}

/** A transaction Bundle whose observation refers to its patient by urn:uuid: both created, the reference rewritten. */
export async function transactionRewritesReferences(client: FhirClient): Promise<void> {
  const patientUrn = 'urn:uuid:5d3f7e36-0d4a-4d2b-9c59-5b0a4d0f1a11';
  const tx = await client.transaction({
    body: {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: patientUrn,
          resource: { resourceType: 'Patient', name: [{ family: 'Lindqvist' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'body weight' }, subject: { reference: patientUrn } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    },
  });
  expect(tx.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(['201', '201']);
  const [txPatient, txObservation] = tx.entry.map((e: { resource: Resource }) => e.resource);
  expect((await client.read({ resourceType: 'Observation', id: txObservation.id })).subject.reference).toBe(`Patient/${txPatient.id}`);
}

/** An invalid resource: 400 with an OperationOutcome naming the field. */
export async function invalidResourceRefused(client: FhirClient): Promise<void> {
  const bad = await failure(client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', birthDate: 'yesterday' } }));
  expect(bad.status).toBe(400);
  expect(bad.data.resourceType).toBe('OperationOutcome');
  expect(JSON.stringify(bad.data)).toContain('Patient.birthDate');
}
