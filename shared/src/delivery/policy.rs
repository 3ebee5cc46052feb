//! What the delivery path does when it cannot be sure: a send that may have reached WeChat
//! without an answer (*in doubt*), and a send while the delivery ledger is unreachable. Plain
//! data, read from the environment by `config` (`DELIVERY_IN_DOUBT`, `SEND_WHEN_LEDGER_DOWN`).

use super::job::SendKind;

/// A send that may have been delivered (timeout, broken connection, HTTP 500/504 on a send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InDoubt {
    /// Recorded as in doubt and not sent again automatically (at most once): the record says so,
    /// the count and the log line name it, and an operator resends it if the user did not get it.
    #[default]
    Hold,
    /// Released and sent again later through the queue (at least once: the user may get it twice).
    Resend,
}

impl std::str::FromStr for InDoubt {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "hold" => Ok(Self::Hold),
            "resend" => Ok(Self::Resend),
            _ => Err(()),
        }
    }
}

/// A send while the fleet's delivery ledger does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LedgerDown {
    /// Queued (202): delivered exactly once when the ledger is back, later.
    #[default]
    Queue,
    /// Sent now, kept once by this instance's memory only: a retry of the same message reaching
    /// another instance during the outage may send it twice.
    Send,
}

/// The delivery policy of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryPolicy {
    /// What happens to a send in doubt.
    pub in_doubt: InDoubt,
    /// Per API (custom, template, subscribe): a send while the ledger is down.
    pub ledger_down: [LedgerDown; 3],
}

impl DeliveryPolicy {
    /// The ledger-down choice for `kind`.
    pub fn ledger_down(&self, kind: SendKind) -> LedgerDown {
        self.ledger_down[kind_index(kind)]
    }

    /// Sets the ledger-down choice for `kind`.
    pub fn set_ledger_down(&mut self, kind: SendKind, choice: LedgerDown) {
        self.ledger_down[kind_index(kind)] = choice;
    }
}

const fn kind_index(kind: SendKind) -> usize {
    match kind {
        SendKind::Custom => 0,
        SendKind::Template => 1,
        SendKind::Subscribe => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_holds_doubtful_sends_and_queues_while_the_ledger_is_down() {
        let mut policy = DeliveryPolicy::default();
        assert_eq!(policy.in_doubt, InDoubt::Hold);
        policy.set_ledger_down(SendKind::Custom, LedgerDown::Send);
        assert_eq!(policy.ledger_down(SendKind::Custom), LedgerDown::Send);
        assert_eq!(policy.ledger_down(SendKind::Template), LedgerDown::Queue);
    }
}
