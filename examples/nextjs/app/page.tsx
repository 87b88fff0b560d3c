import { currentUserId } from './session';

export const dynamic = 'force-dynamic';

export default async function Home() {
  const userId = await currentUserId();
  return (
    <main>
      <form action="/api/sign-in" method="post">
        <label>
          Signed in as <input name="userId" defaultValue={userId} aria-label="user id" />
        </label>{' '}
        <button type="submit">Sign in</button>
      </form>
      <h1>Upgrade to Pro</h1>
      <form action="/api/checkout" method="post">
        <button type="submit">Subscribe</button>
      </form>
    </main>
  );
}
