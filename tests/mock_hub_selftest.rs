mod support;
#[test]
fn placeholder() {
    let _ = support::mock_hub::MockHub::start();
}
