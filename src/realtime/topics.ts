/**
 * MQTT topics and who may subscribe to what (SPEC section 6). Ids in topics are checked against one
 * pattern, so a crafted id can never add a level or a wildcard to a topic.
 */
export const TOPIC_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const isTopicId = (value: unknown): value is string =>
  typeof value === 'string' && TOPIC_ID.test(value);

export const customerStateTopic = (customerId: string) => `billing/customers/${customerId}/state`;
export const customerEventsTopic = (customerId: string) => `billing/customers/${customerId}/events`;
export const userStateTopic = (userId: string) => `billing/users/${userId}/state`;
export const userEventsTopic = (userId: string) => `billing/users/${userId}/events`;

export function topicsFor(subject: { customerId?: string; userId?: string }): string[] {
  const topics: string[] = [];
  if (subject.customerId)
    topics.push(customerStateTopic(subject.customerId), customerEventsTopic(subject.customerId));
  if (subject.userId) topics.push(userStateTopic(subject.userId), userEventsTopic(subject.userId));
  return topics;
}

export interface Grant {
  subject: string;
  topics: string[];
  admin: boolean;
}

/**
 * A browser may subscribe to exactly the topics its token lists; a wildcard would reach past them, so it is
 * refused even when it would also match them. An admin token may subscribe to anything under `billing/`.
 */
export function maySubscribe(grant: Grant, filter: string): boolean {
  if (grant.admin) return filter === 'billing/#' || filter.startsWith('billing/');
  return grant.topics.includes(filter);
}
