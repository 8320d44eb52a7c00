/* bin/hako, the front (issue 20). Stub. */
int main(void) { return 0; }
