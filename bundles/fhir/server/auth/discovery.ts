// Discovery: /.well-known/smart-configuration (SMART App Launch 2.0) and the security section of
// the CapabilityStatement (/metadata), both naming this server's endpoints under its base URL.
import type { CapabilityStatementRestSecurity } from '@medplum/fhirtypes';
import { ASSERTION_ALGS } from './tokens.js';

export const PATHS = {
  authorize: 'auth/authorize',
  login: 'auth/login',
  token: 'auth/token',
  revoke: 'auth/revoke',
  jwks: 'auth/jwks',
} as const;

export function smartConfiguration(base: string): Record<string, unknown> {
  return {
    issuer: base,
    jwks_uri: `${base}/${PATHS.jwks}`,
    authorization_endpoint: `${base}/${PATHS.authorize}`,
    token_endpoint: `${base}/${PATHS.token}`,
    revocation_endpoint: `${base}/${PATHS.revoke}`,
    grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'none'],
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: [
      'system/*.cruds',
      'user/*.cruds',
      'patient/*.cruds',
      'system/AuditEvent.rs',
      'launch/patient',
      'offline_access',
      'openid',
      'fhirUser',
    ],
    capabilities: [
      'client-confidential-asymmetric',
      'client-public',
      'launch-standalone',
      'context-standalone-patient',
      'permission-v1',
      'permission-v2',
      'permission-patient',
      'permission-user',
      'permission-offline',
    ],
  };
}

export function securitySection(base: string): CapabilityStatementRestSecurity {
  return {
    cors: false,
    service: [
      {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
        text: 'OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)',
      },
    ],
    description:
      'SMART App Launch 2.0 and SMART Backend Services: bearer access tokens from the token endpoint; SMART v2 scopes enforced on every interaction.',
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: [
          { url: 'token', valueUri: `${base}/${PATHS.token}` },
          { url: 'authorize', valueUri: `${base}/${PATHS.authorize}` },
          { url: 'revoke', valueUri: `${base}/${PATHS.revoke}` },
        ],
      },
    ],
  };
}
