//! 16-bit sequence numbers that wrap: `a` is before `b` when `b` is less than half the space
//! ahead of it.

/// `a` comes strictly before `b`.
pub fn before(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

/// `a` comes before `b` or is `b`.
pub fn before_or_eq(a: u16, b: u16) -> bool {
    a == b || before(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_survives_the_wrap() {
        assert!(before(1, 2));
        assert!(!before(2, 1));
        assert!(!before(5, 5));
        assert!(before(0xffff, 0));
        assert!(before(0xfff0, 0x0010));
        assert!(!before(0x0010, 0xfff0));
        assert!(before_or_eq(7, 7));
        assert!(before_or_eq(0xffff, 3));
    }
}
