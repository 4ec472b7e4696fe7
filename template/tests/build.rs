fn main() {
    strata_tests::servers::declare_test_servers();
}
