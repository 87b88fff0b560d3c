/**
 * The signed-in user. A real app reads its own session here (NextAuth, Clerk, a cookie…); the example keeps
 * the user id in a cookie set by its sign-in form (any id will do), or `DEMO_USER_ID`, so that it runs
 * without an auth provider.
 */
import { cookies } from 'next/headers';

export const USER_COOKIE = 'demo_user';
/** The ids Paywire accepts in MQTT topics. */
export const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

export async function currentUserId(): Promise<string> {
  const fromCookie = (await cookies()).get(USER_COOKIE)?.value;
  return fromCookie && USER_ID.test(fromCookie) ? fromCookie : (process.env.DEMO_USER_ID ?? 'user_demo');
}
