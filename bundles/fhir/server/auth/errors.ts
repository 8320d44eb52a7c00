// OAuth 2.0 error responses (RFC 6749 section 5.2): { error, error_description }, 400 or 401.
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'unsupported_token_type';

export class OAuthError extends Error {
  constructor(
    readonly code: OAuthErrorCode,
    message: string,
    /** 401 for a client that failed to authenticate, else 400. */
    readonly status = code === 'invalid_client' ? 401 : 400,
  ) {
    super(message);
  }
}
