/** The example's sign-in: remembers the user id typed into the form in a cookie. */
import { USER_COOKIE, USER_ID } from '../../session';

export async function POST(request: Request) {
  const userId = String((await request.formData()).get('userId') ?? '');
  if (!USER_ID.test(userId))
    return new Response('user ids are 1–64 letters, digits, _ or -', { status: 400 });
  return new Response(null, {
    status: 303,
    headers: {
      location: '/',
      'set-cookie': `${USER_COOKIE}=${userId}; Path=/; HttpOnly; SameSite=Lax`,
    },
  });
}
