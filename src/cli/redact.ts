/**
 * Last line of defence for output: hide anything that looks like a credential
 * (userinfo in URLs, Authorization values, token/password query parameters).
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@')
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, '$1 ***')
    .replace(/([?&](?:access_token|token|password|refresh_token|client_secret)=)[^&\s]+/gi, '$1***');
}
