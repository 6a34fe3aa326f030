import { useState, type FormEvent } from 'react';
import { useApolloClient, useMutation } from '@apollo/client/react';
import { sessionEnded } from './apollo';
import { errorCode, errorMessage } from './errors';
import { LogOutMutation, MeQuery, VerifySecondFactorMutation } from './operations';

/**
 * SecondFactorForm is the second step of signing in to an account with
 * two-factor on: the password was right, and the session waits for a code
 * from the authenticator app or a recovery code. A reload lands here too,
 * as long as the session waits (App asks session { secondFactorPending }).
 */
export function SecondFactorForm() {
  const client = useApolloClient();
  const [code, setCode] = useState('');
  const [failure, setFailure] = useState<string | null>(null);
  const [verify, verifyState] = useMutation(VerifySecondFactorMutation);
  const [logOut, logOutState] = useMutation(LogOutMutation);
  const busy = verifyState.loading || logOutState.loading;

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setFailure(null);
    try {
      // The answer replaces the session cookie with the signed-in one.
      await verify({ variables: { code: code.trim() } });
    } catch (err) {
      setFailure(errorMessage(err));
      setCode('');
      // A wrong code leaves the session waiting; a session that waited too
      // long (or was ended elsewhere) is gone: asking again who we are
      // puts the login form on screen.
      if (errorCode(err) === 'UNAUTHENTICATED') {
        try {
          const { data } = await client.query({ query: MeQuery, fetchPolicy: 'network-only' });
          if (!data?.session?.secondFactorPending) sessionEnded('Signing in took too long. Log in again.');
        } catch {
          // Unreachable now: the failure above is on screen already.
        }
      }
      return;
    }
    sessionEnded(null);
    await client.resetStore();
  }

  async function cancel() {
    setFailure(null);
    try {
      await logOut(); // deleteSession without an id: the waiting session
    } catch (err) {
      if (errorCode(err) !== 'UNAUTHENTICATED') {
        setFailure(errorMessage(err));
        return;
      }
    }
    await client.resetStore();
  }

  return (
    <form onSubmit={(e) => void submit(e)} className="card" aria-label="Second factor">
      <h2>Two-factor sign-in</h2>
      <p className="muted">Your password was right. Enter the code your authenticator app shows now.</p>
      <label>
        6-digit code or a recovery code
        <input name="code" autoComplete="one-time-code" autoCapitalize="off" spellCheck={false} required autoFocus
          value={code} onChange={(e) => setCode(e.target.value)} />
      </label>
      {failure && <p role="alert" className="error">{failure}</p>}
      <div className="actions">
        <button type="submit" disabled={busy}>Verify</button>
        <button type="button" disabled={busy} className="secondary" onClick={() => void cancel()}>Cancel</button>
      </div>
    </form>
  );
}
