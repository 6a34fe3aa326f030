import { CombinedGraphQLErrors, ServerError } from '@apollo/client';
import { PasskeyError } from './passkeys';

interface WireError {
  message: string;
  extensions?: { code?: unknown; retryAfter?: unknown; secondFactorRequired?: unknown };
}

// wireErrors returns the GraphQL errors an Apollo error carries: from the
// GraphQL result, or from the body of a non-2xx answer (gatehouse answers
// refused requests, such as a CSRF refusal, with HTTP 400 and the same
// {"errors": [...]} shape).
function wireErrors(error: unknown): readonly WireError[] {
  if (CombinedGraphQLErrors.is(error)) return error.errors as readonly WireError[];
  if (ServerError.is(error)) {
    try {
      const body = JSON.parse(error.bodyText) as { errors?: WireError[] };
      return body.errors ?? [];
    } catch {
      return [];
    }
  }
  return [];
}

/** errorCode returns gatehouse's extensions.code of an Apollo error, if any. */
export function errorCode(error: unknown): string | undefined {
  const code = wireErrors(error)[0]?.extensions?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * secondFactorRequired reports whether an Apollo error refused an operation
 * because the session waits for its second factor (verifySecondFactor).
 */
export function secondFactorRequired(error: unknown): boolean {
  return wireErrors(error)[0]?.extensions?.secondFactorRequired === true;
}

/** errorMessage says what went wrong, in words for the person at the screen. */
export function errorMessage(error: unknown): string {
  if (error instanceof PasskeyError) return error.message; // the browser's, not the server's
  const [first] = wireErrors(error);
  if (!first) {
    // A failed fetch: gatehouse is down or elsewhere (config.json), or the
    // browser refused its answer because CORS_ORIGINS lacks this origin.
    return error instanceof Error
      ? `Cannot reach the server: ${error.message}. Check that gatehouse runs at the address in ` +
        `config.json and that its CORS_ORIGINS lists ${window.location.origin}.`
      : String(error);
  }
  const { code, retryAfter } = first.extensions ?? {};
  if (code === 'TOO_MANY_REQUESTS' && typeof retryAfter === 'number') {
    return `Too many attempts: try again in ${retryAfter} s.`;
  }
  if (code === 'INTERNAL_SERVER_ERROR') return 'The server failed; try again later.';
  return first.message.charAt(0).toUpperCase() + first.message.slice(1) + '.';
}
