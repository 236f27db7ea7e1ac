from tests.cluster.flows import introspect, token


def test_token_through_nginx(cluster, registered):
    http = cluster.session("127.0.0.2")
    response = token(http, cluster.base_url, registered["svc"])
    assert response.status_code == 200, response.text
    answer = introspect(http, cluster.base_url, registered["rs"], response.json()["access_token"])
    assert answer.json()["active"] is True, answer.text
