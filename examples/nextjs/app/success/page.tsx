import { currentUserId } from '../session';
import { BillingStatus } from './billing-status';

export const dynamic = 'force-dynamic';

export default async function Success() {
  return (
    <main>
      <h1>Thanks!</h1>
      <BillingStatus userId={await currentUserId()} feature="pro" />
    </main>
  );
}
