// The browser's half of gatehouse's passkey ceremonies (WebAuthn). The
// server's begin mutation returns the options as JSON; the browser's own
// parse*OptionsFromJSON turns them into what navigator.credentials takes
// (base64url strings into ArrayBuffers), and PublicKeyCredential.toJSON()
// turns its answer back into JSON for the finish mutation. No base64
// code of the app's own.

/**
 * passkeysSupported reports whether this browser has WebAuthn with the
 * JSON helpers the app relies on (Chrome and Edge 129+, Firefox 119+,
 * Safari 18.4+).
 */
export function passkeysSupported(): boolean {
  return typeof PublicKeyCredential !== 'undefined' &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';
}

/**
 * PasskeyError is a passkey ceremony that failed, said in words for the
 * person at the screen (errorMessage shows it as is): mostly one that
 * ended in the browser (cancelled, unsupported, refused for this site).
 */
export class PasskeyError extends Error {}

const unsupported = 'This browser cannot use passkeys: it lacks WebAuthn or PublicKeyCredential.parseCreationOptionsFromJSON.';

/**
 * createPasskey asks the browser to make a passkey for the creation
 * options beginPasskeyRegistration returned, and returns its toJSON() for
 * finishPasskeyRegistration.
 */
export async function createPasskey(options: Record<string, unknown>): Promise<Record<string, unknown>> {
  if (!passkeysSupported()) throw new PasskeyError(unsupported);
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(
    options as unknown as PublicKeyCredentialCreationOptionsJSON);
  return ceremony(() => navigator.credentials.create({ publicKey }));
}

/**
 * getPasskey asks the browser to sign the request options beginPasskeyLogin
 * returned with one of the passkeys it holds for this site, and returns
 * the assertion's toJSON() for finishPasskeyLogin.
 */
export async function getPasskey(options: Record<string, unknown>): Promise<Record<string, unknown>> {
  if (!passkeysSupported()) throw new PasskeyError(unsupported);
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(
    options as unknown as PublicKeyCredentialRequestOptionsJSON);
  return ceremony(() => navigator.credentials.get({ publicKey }));
}

// ceremony runs one navigator.credentials call and says its DOMExceptions
// in words: the browser gives the page few details on purpose.
async function ceremony(call: () => Promise<Credential | null>): Promise<Record<string, unknown>> {
  let credential: Credential | null;
  try {
    credential = await call();
  } catch (err) {
    if (!(err instanceof DOMException)) throw err;
    switch (err.name) {
      case 'NotAllowedError':
        // Cancelled, timed out, or no passkey for this site on the device.
        throw new PasskeyError('The passkey prompt was cancelled or timed out, or this device has no passkey for this site.');
      case 'InvalidStateError':
        throw new PasskeyError('This device already holds a passkey for your account.');
      case 'SecurityError':
        throw new PasskeyError(`This page (${window.location.origin}) may not use passkeys for the server's domain: ` +
          'check its WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS.');
      default:
        throw new PasskeyError(`The browser refused: ${err.message}`);
    }
  }
  if (!(credential instanceof PublicKeyCredential)) throw new PasskeyError('The browser returned no passkey.');
  return credential.toJSON() as unknown as Record<string, unknown>;
}
