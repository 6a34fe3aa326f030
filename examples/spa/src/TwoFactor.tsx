import { useState, type FormEvent, type ReactNode } from 'react';
import { useMutation } from '@apollo/client/react';
import { errorCode, errorMessage } from './errors';
import type { BeginTotpEnrollmentMutation as Begin, MeQuery as Me } from './gql/graphql';
import {
  BeginTotpEnrollmentMutation, ConfirmTotpEnrollmentMutation, DisableTotpMutation, MeQuery,
  RegenerateRecoveryCodesMutation, SessionsQuery,
} from './operations';

type User = NonNullable<Me['me']>;
type Enrollment = Begin['beginTotpEnrollment'];

// What the section shows besides its summary: a form, or the enrollment.
type Step = 'none' | 'begin' | 'confirm' | 'disable' | 'regenerate';

/**
 * TwoFactor sets up, and turns off, a second factor for signing in: a code
 * from an authenticator app (TOTP), with single-use recovery codes for when
 * the app is lost. New recovery codes are shown once, right after they are
 * made; the server keeps only their digests.
 */
export function TwoFactor({ me }: { me: User }) {
  const [step, setStep] = useState<Step>('none');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [recoveryCodes, setRecoveryCodes] = useState<string[] | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  // Turning the factor on or off ends the user's other sessions, and every
  // change moves the count of recovery codes.
  const refetch = { refetchQueries: [MeQuery, SessionsQuery], awaitRefetchQueries: true };
  const [begin, beginState] = useMutation(BeginTotpEnrollmentMutation);
  const [confirm, confirmState] = useMutation(ConfirmTotpEnrollmentMutation, refetch);
  const [disable, disableState] = useMutation(DisableTotpMutation, refetch);
  const [regenerate, regenerateState] = useMutation(RegenerateRecoveryCodesMutation, refetch);
  const busy = beginState.loading || confirmState.loading || disableState.loading || regenerateState.loading;

  function go(next: Step) {
    setStep(next);
    setPassword('');
    setCode('');
    setFailure(null);
    if (next !== 'confirm') setEnrollment(null);
  }

  // run submits one form. An UNAUTHENTICATED answer has already sent the
  // app back to the login form (see apollo.ts); any other failure is said
  // here, and the form stays, with the code cleared for the next one.
  async function run(e: FormEvent<HTMLFormElement>, action: () => Promise<void>) {
    e.preventDefault();
    setFailure(null);
    try {
      await action();
    } catch (err) {
      setCode('');
      if (errorCode(err) !== 'UNAUTHENTICATED') setFailure(errorMessage(err));
    }
  }

  let body: ReactNode;
  if (recoveryCodes) {
    body = (
      <div role="region" aria-label="Recovery codes">
        <p className="warning"><strong>Save these recovery codes now.</strong> They are shown only this once.
          Each one signs you in once, in place of a code, if you lose your authenticator app.</p>
        <ol className="codes" data-testid="recovery-codes">
          {recoveryCodes.map((c) => <li key={c}><code>{c}</code></li>)}
        </ol>
        <button onClick={() => setRecoveryCodes(null)}>I have saved them</button>
      </div>
    );
  } else if (step === 'begin') {
    body = (
      <form aria-label="Set up two-factor" onSubmit={(e) => void run(e, async () => {
        const res = await begin({ variables: { password } });
        if (res.data) {
          go('confirm');
          setEnrollment(res.data.beginTotpEnrollment);
        }
      })}>
        <PasswordField value={password} onChange={setPassword} />
        {failure && <p role="alert" className="error">{failure}</p>}
        <FormButtons busy={busy} submit="Continue" onCancel={() => go('none')} />
      </form>
    );
  } else if (step === 'confirm' && enrollment) {
    body = (
      <form aria-label="Confirm two-factor" onSubmit={(e) => void run(e, async () => {
        const res = await confirm({ variables: { code: code.trim() } });
        if (res.data) {
          setRecoveryCodes(res.data.confirmTotpEnrollment);
          go('none');
        }
      })}>
        <p>1. Scan this QR code with your authenticator app, or enter the key by hand.</p>
        {/* The server's SVG, as an image: an <img> never runs its scripts
            or touches this page, as innerHTML would. */}
        <img className="qr" alt="QR code for your authenticator app" width={200} height={200}
          src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(enrollment.qrCodeSvg)}`} />
        <p className="muted">
          Key: <code data-testid="totp-secret">{enrollment.secret}</code> (time-based, 6 digits, 30 s)
          {enrollment.uri.startsWith('otpauth://') && <> · <a href={enrollment.uri}>open in an authenticator app</a></>}
        </p>
        <label>
          2. Enter the 6-digit code it shows
          <input name="code" autoComplete="one-time-code" inputMode="numeric" required value={code}
            onChange={(e) => setCode(e.target.value)} />
        </label>
        {failure && <p role="alert" className="error">{failure}</p>}
        <FormButtons busy={busy} submit="Turn on" onCancel={() => go('none')} />
      </form>
    );
  } else if (step === 'disable' || step === 'regenerate') {
    const disabling = step === 'disable';
    body = (
      <form aria-label={disabling ? 'Turn off two-factor' : 'New recovery codes'}
        onSubmit={(e) => void run(e, async () => {
          if (disabling) {
            await disable({ variables: { password, code: code.trim() } });
            go('none');
            return;
          }
          const res = await regenerate({ variables: { password, code: code.trim() } });
          if (res.data) {
            setRecoveryCodes(res.data.regenerateRecoveryCodes);
            go('none');
          }
        })}>
        <p className="muted">{disabling
          ? 'Your password alone will sign you in, and your other sessions end.'
          : 'The recovery codes you have now stop working.'}</p>
        <PasswordField value={password} onChange={setPassword} />
        <label>
          6-digit code or a recovery code
          <input name="code" autoComplete="one-time-code" autoCapitalize="off" spellCheck={false} required
            value={code} onChange={(e) => setCode(e.target.value)} />
        </label>
        {failure && <p role="alert" className="error">{failure}</p>}
        <FormButtons busy={busy} submit={disabling ? 'Turn off two-factor' : 'Make new recovery codes'}
          onCancel={() => go('none')} />
      </form>
    );
  }

  return (
    <section className="card two-factor" aria-label="Two-factor">
      <div className="row">
        <div>
          <h2>Two-factor sign-in</h2>
          {me.totpEnabled ? (
            <p role="status" className="notice">Two-factor is on. <span data-testid="recovery-codes-left">
              {me.recoveryCodesLeft}</span> recovery code{me.recoveryCodesLeft === 1 ? '' : 's'} left.</p>
          ) : (
            <p className="muted">Two-factor is off: your password alone signs you in.</p>
          )}
        </div>
        {step === 'none' && !recoveryCodes && (
          <div className="actions">
            {me.totpEnabled ? (
              <>
                <button className="secondary" onClick={() => go('regenerate')}>New recovery codes</button>
                <button className="danger" onClick={() => go('disable')}>Turn off</button>
              </>
            ) : (
              <button onClick={() => go('begin')}>Set up two-factor</button>
            )}
          </div>
        )}
      </div>
      {body}
    </section>
  );
}

function PasswordField({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  return (
    <label>
      Your password
      <input name="password" type="password" autoComplete="current-password" required value={value}
        onChange={(e) => onChange(e.target.value)} />
    </label>
  );
}

function FormButtons({ busy, submit, onCancel }: { busy: boolean; submit: string; onCancel: () => void }) {
  return (
    <div className="actions">
      <button type="submit" disabled={busy}>{submit}</button>
      <button type="button" className="secondary" disabled={busy} onClick={onCancel}>Cancel</button>
    </div>
  );
}
