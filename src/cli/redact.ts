/**
 * Last line of defence for output (error messages and --debug lines): hide anything that looks
 * like a credential. The code never puts one in a message; this catches what a registry, a
 * proxy or a credential helper might echo back.
 */
export function redactSecrets(text: string): string {
  return text
    // userinfo in URLs: https://user:pass@host
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@')
    // Authorization values
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, '$1 ***')
    // Quay's CNR token, `basic <base64(user:pass)>` in lowercase (plain words after "basic" stay)
    .replace(/\bbasic\s+([A-Za-z0-9+/]+={0,2})(?![A-Za-z0-9+/=])/g, (match, b64: string) => (Buffer.from(b64, 'base64').includes(0x3a) ? 'basic ***' : match))
    // credentials and signatures in query strings or forms (token services, presigned storage URLs)
    .replace(/([?&](?:access_token|token|password|refresh_token|client_secret|x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig)=)[^&\s"']+/gi, '$1***')
    // JSON fields that hold secrets (config.json entries, helper answers, token responses)
    .replace(/("(?:auth|password|secret|identitytoken|registrytoken|token|access_token|refresh_token)"\s*:\s*")(?:[^"\\]|\\.)*"/gi, '$1***"');
}
